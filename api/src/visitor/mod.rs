//! What the website channel needs beyond routes: the keys visitor tokens are signed with,
//! the gate that lets a widget run only on its verified domains, and the visitor rate limits.

pub mod gate;
pub mod keys;
pub mod limits;
