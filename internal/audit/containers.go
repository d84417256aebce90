package audit

// Section 5 Container runtime.
var containerChecks = []Check{}
