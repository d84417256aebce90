package version

import (
	"strings"
)

// MavenVersion is a Maven version ordered as Maven's ComparableVersion orders it
// (maven-artifact 3.x, including the fix of MNG-6964): '.' and '-' separate items, a
// change between digits and letters separates too and opens a sub-list like '-'; numbers
// compare numerically, qualifiers by alpha < beta < milestone < rc = cr < snapshot < "" =
// ga = final = release < sp < unknown qualifiers (lexically); trailing zeros and empty
// qualifiers are dropped (1.0.0 = 1, 1-ga = 1).
type MavenVersion struct {
	raw   string
	items mvnList
}

type mvnKind int8

const (
	mvnInt mvnKind = iota
	mvnString
	mvnList_
)

type mvnItem struct {
	kind mvnKind
	text string  // digits (leading zeros stripped) or the qualifier
	list mvnList // for mvnList_
}

type mvnList []mvnItem

// ParseMaven parses v. Every string is a Maven version; only the empty one is refused.
func ParseMaven(v string) (MavenVersion, error) {
	s := strings.ToLower(strings.TrimSpace(v))
	if s == "" {
		return MavenVersion{}, invalid(v, "empty")
	}
	// Build the nested lists with a stack of indexes into their parents, as
	// ComparableVersion's parseVersion does with its stack of ListItems.
	root := &mvnNode{}
	stack := []*mvnNode{root}
	cur := root
	push := func() {
		n := &mvnNode{}
		cur.children = append(cur.children, mvnChild{node: n})
		cur = n
		stack = append(stack, n)
	}
	add := func(isDigit bool, buf string) {
		cur.children = append(cur.children, mvnChild{item: parseMvnItem(isDigit, buf, false)})
	}
	isDig := false
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '.':
			if i == start {
				cur.children = append(cur.children, mvnChild{item: mvnItem{kind: mvnInt}})
			} else {
				add(isDig, s[start:i])
			}
			start = i + 1
		case c == '-':
			if i == start {
				cur.children = append(cur.children, mvnChild{item: mvnItem{kind: mvnInt}})
			} else {
				add(isDig, s[start:i])
			}
			start = i + 1
			push()
		case isDigit(c):
			if !isDig && i > start {
				cur.children = append(cur.children, mvnChild{item: parseMvnItem(false, s[start:i], true)})
				start = i
				push()
			}
			isDig = true
		default:
			if isDig && i > start {
				add(true, s[start:i])
				start = i
				push()
			}
			isDig = false
		}
	}
	if len(s) > start {
		add(isDig, s[start:])
	}
	return MavenVersion{raw: v, items: root.build()}, nil
}

// mvnNode is a list under construction; normalize runs on every list once parsing is
// done, innermost first, before the lists are frozen.
type mvnNode struct{ children []mvnChild }

type mvnChild struct {
	item mvnItem
	node *mvnNode
}

func (n *mvnNode) build() mvnList {
	l := make(mvnList, 0, len(n.children))
	for _, c := range n.children {
		if c.node != nil {
			l = append(l, mvnItem{kind: mvnList_, list: c.node.build()})
		} else {
			l = append(l, c.item)
		}
	}
	// normalize: drop trailing null items (0, "", empty lists), stepping over lists.
	for i := len(l) - 1; i >= 0; i-- {
		if l[i].isNull() {
			l = append(l[:i], l[i+1:]...)
		} else if l[i].kind != mvnList_ {
			break
		}
	}
	return l
}

func parseMvnItem(isDigit bool, buf string, followedByDigit bool) mvnItem {
	if isDigit {
		return mvnItem{kind: mvnInt, text: strings.TrimLeft(buf, "0")}
	}
	if followedByDigit && len(buf) == 1 {
		switch buf {
		case "a":
			buf = "alpha"
		case "b":
			buf = "beta"
		case "m":
			buf = "milestone"
		}
	}
	switch buf {
	case "ga", "final", "release":
		buf = ""
	case "cr":
		buf = "rc"
	}
	return mvnItem{kind: mvnString, text: buf}
}

var mvnQualifiers = []string{"alpha", "beta", "milestone", "rc", "snapshot", "", "sp"}

const mvnRelease = 5 // index of "" in mvnQualifiers

// qualifierRank returns the rank of a known qualifier, or len(mvnQualifiers) for an
// unknown one (which then sorts by its text).
func qualifierRank(q string) int {
	for i, k := range mvnQualifiers {
		if k == q {
			return i
		}
	}
	return len(mvnQualifiers)
}

func cmpQualifier(a, b string) int {
	ra, rb := qualifierRank(a), qualifierRank(b)
	if ra != rb {
		return sign(ra - rb)
	}
	if ra == len(mvnQualifiers) {
		return strings.Compare(a, b)
	}
	return 0
}

func (it mvnItem) isNull() bool {
	switch it.kind {
	case mvnInt:
		return it.text == ""
	case mvnString:
		return qualifierRank(it.text) == mvnRelease
	}
	return len(it.list) == 0
}

// cmpNull compares an item with the absence of one.
func (it mvnItem) cmpNull() int {
	switch it.kind {
	case mvnInt:
		if it.text == "" {
			return 0
		}
		return 1
	case mvnString:
		return cmpQualifier(it.text, "")
	}
	for _, c := range it.list {
		if r := c.cmpNull(); r != 0 {
			return r
		}
	}
	return 0
}

func (it mvnItem) cmp(o mvnItem) int {
	switch it.kind {
	case mvnInt:
		if o.kind == mvnInt {
			return cmpDigits(it.text, o.text)
		}
		return 1 // 1.1 > 1-sp, 1.1 > 1-1
	case mvnString:
		if o.kind == mvnString {
			return cmpQualifier(it.text, o.text)
		}
		return -1 // 1.any < 1.1, 1.any < 1-1
	}
	switch o.kind {
	case mvnInt:
		return -1 // 1-1 < 1.0.x
	case mvnString:
		return 1 // 1-1 > 1-sp
	}
	return cmpMvnLists(it.list, o.list)
}

func cmpMvnLists(a, b mvnList) int {
	for i := 0; i < max(len(a), len(b)); i++ {
		var r int
		switch {
		case i >= len(a):
			r = -b[i].cmpNull()
		case i >= len(b):
			r = a[i].cmpNull()
		default:
			r = a[i].cmp(b[i])
		}
		if r != 0 {
			return r
		}
	}
	return 0
}

func (m MavenVersion) String() string { return m.raw }

// Compare orders as ComparableVersion.compareTo.
func (m MavenVersion) Compare(o Version) int {
	n, ok := o.(MavenVersion)
	if !ok {
		return mismatched(m, o)
	}
	return cmpMvnLists(m.items, n.items)
}
