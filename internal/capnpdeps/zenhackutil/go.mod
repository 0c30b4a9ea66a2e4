// A stand-in for zenhack.net/go/util, which capnproto.org/go/capnp/v3
// requires but the Go module proxy does not serve (it answers 403). go.mod replaces
// the module with this directory. It implements only what capnp's core
// package uses (package sync/mutex), written for zonestats; capnp's rpc
// package (which needs more of zenhack.net/go/util) is not used.
module zenhack.net/go/util

go 1.19
