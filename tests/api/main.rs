//! Black-box tests of the Upzento Chat server.
