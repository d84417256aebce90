package audit

// Section 4 Container images and build files.
var imageChecks = []Check{}
