package main

// benchThrift compares Thrift echo through wasmserve with a native Go
// TSimpleServer running the same generated handler.
func benchThrift(o *options, b *builds, r *report) error {
	r.notes = append(r.notes, "## Thrift echo\n\nNot measured in this run.")
	return nil
}
