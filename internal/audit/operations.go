package audit

// Section 6 Docker security operations.
var operationsChecks = []Check{}
