package scanner

// UseReferencePath makes o select the reference read and parse path
// (point reads, strict parsers) that the fast path must agree with.
func UseReferencePath(o *Options) { o.reference = true }
