//! RPC (todo)
