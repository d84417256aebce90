package audit

// Section 3 Docker daemon configuration files.
var fileChecks = []Check{}
