package audit

// Section 2 Docker daemon configuration.
var daemonChecks = []Check{}
