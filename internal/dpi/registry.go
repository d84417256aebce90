package dpi

import "slices"

// defaultParsers is the one set of parsers that NewInspector(nil, ...) uses. Parsers hold
// no state, so every flow shares them.
//
// The order matters only when two parsers match the same bytes: the first wins. Parsers
// with long fixed signatures come first; DNS comes last because over TCP its signature
// (a length and a header) is the weakest.
var defaultParsers = []Parser{
	NewTLS(),
	NewHTTP(),
	NewHTTP2(),
	NewSSH(),
	NewPostgreSQL(),
	NewMySQL(),
	NewMongoDB(),
	NewRedis(),
	NewMemcached(),
	NewKafka(),
	NewAMQP(),
	NewMQTT(),
	NewNATS(),
	NewDNS(),
}

// Parsers returns every parser of the package, in the order an Inspector tries them. The
// slice is new; the parsers in it are stateless and safe for concurrent use.
func Parsers() []Parser { return slices.Clone(defaultParsers) }
