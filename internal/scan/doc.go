// Package scan holds the types shared by Vigil's vulnerability scanner: the inventory of a
// target (image, container, host or directory), its packages, and the findings from
// matching them against OSV advisories. The work is done by its subpackages: inventory
// (extractors and the safe reading of images and root filesystems), vulndb (the OSV
// database, its on-disk index, version comparison and matching) and report (output
// formats).
package scan
