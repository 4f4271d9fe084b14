//! Load errors: every one names the file, line and column it is about.

use std::fmt;

/// An error in a model file, shown as `FILE:LINE:COL: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OdeError {
    /// The file as the user named it (`<string>` for text given directly).
    pub file: String,
    /// 1-based; 0 when the error is about the whole file (e.g. unreadable).
    pub line: usize,
    /// 1-based column (characters).
    pub col: usize,
    pub message: String,
}

impl fmt::Display for OdeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(
                f,
                "{}:{}:{}: {}",
                self.file, self.line, self.col, self.message
            )
        }
    }
}

impl std::error::Error for OdeError {}

/// A position in the file (1-based line and column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    pub line: usize,
    pub col: usize,
}

/// An error without the file name yet; [`Located::in_file`] adds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    pub pos: Pos,
    pub message: String,
}

impl Located {
    pub fn new(pos: Pos, message: impl Into<String>) -> Self {
        Located {
            pos,
            message: message.into(),
        }
    }

    pub fn in_file(self, file: &str) -> OdeError {
        OdeError {
            file: file.to_string(),
            line: self.pos.line,
            col: self.pos.col,
            message: self.message,
        }
    }
}

/// Shorthand for an `Err(Located)`.
pub fn fail<T>(pos: Pos, message: impl Into<String>) -> Result<T, Located> {
    Err(Located::new(pos, message))
}
