//! What a refused command or invalid value says about itself. The API turns it into an
//! `application/problem+json` answer without knowing each aggregate's errors by name.

/// How a refusal is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectionKind {
    /// The addressed thing does not exist (for this tenant): 404.
    NotFound,
    /// The thing exists but is in a state that forbids the command: 409.
    Conflict,
    /// The command's content is not acceptable: 422.
    Unprocessable,
    /// Something the rules depend on could not be reached; try again: 503.
    Unavailable,
}

/// A refusal with a stable machine-readable code, the field at fault where there is one,
/// and a human explanation from its `Display`.
pub trait Rejection: std::error::Error {
    /// How the refusal is answered.
    fn kind(&self) -> RejectionKind;
    /// Stable code, part of the API contract: never rename one.
    fn code(&self) -> &'static str;
    /// The request field at fault, if one is.
    fn field(&self) -> Option<&'static str> {
        None
    }
}
