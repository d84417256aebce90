package audit

// Section 1 Host configuration.
var hostChecks = []Check{}
