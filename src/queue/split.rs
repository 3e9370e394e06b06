//! Splits an upload into its lines as the bytes arrive, holding at most one line: a JSONL file
//! of any size passes through in bounded memory.
//!
//! Lines end at `\n` (a `\r` before it is dropped); blank lines are skipped but counted, so every
//! line keeps its 1-based number in the file — the number errors name. A line longer than the
//! limit is an error naming it, found before more than the limit is held. Pure: no I/O.

use thiserror::Error;

use crate::store::queue::FileLine;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SplitError {
    #[error("line {line} is longer than {max} bytes")]
    LineTooLong { line: u32, max: usize },
    #[error("the file has more than {} lines", u32::MAX)]
    TooManyLines,
}

#[derive(Debug)]
pub struct Splitter {
    max: usize,
    partial: Vec<u8>,
    /// Number of the line being read.
    line: u32,
}

impl Splitter {
    /// `max`: the longest line accepted, in bytes (without its line end).
    pub fn new(max: usize) -> Splitter {
        Splitter {
            max,
            partial: Vec::new(),
            line: 1,
        }
    }

    /// Takes the next bytes of the file; every line they complete that is not blank goes to
    /// `emit`.
    pub fn push(
        &mut self,
        mut chunk: &[u8],
        emit: &mut impl FnMut(FileLine),
    ) -> Result<(), SplitError> {
        while let Some(end) = chunk.iter().position(|b| *b == b'\n') {
            self.take(&chunk[..end])?;
            self.end_line(emit)?;
            chunk = &chunk[end + 1..];
        }
        self.take(chunk)
    }

    /// The end of the file: a last line without a line end is a line too. Returns the number
    /// of lines the file has (blank ones included).
    pub fn finish(mut self, emit: &mut impl FnMut(FileLine)) -> Result<u32, SplitError> {
        if self.partial.is_empty() {
            return Ok(self.line - 1);
        }
        let last = self.line;
        self.end_line(emit)?;
        Ok(last)
    }

    fn take(&mut self, bytes: &[u8]) -> Result<(), SplitError> {
        // A `\r` that may precede the line end is not content: one byte of slack for it.
        if self.partial.len() + bytes.len() > self.max + 1 {
            return Err(SplitError::LineTooLong {
                line: self.line,
                max: self.max,
            });
        }
        // Grown to what the line needs, not doubled: a long line would otherwise hold up to
        // twice its size while it is read.
        self.partial.reserve_exact(bytes.len());
        self.partial.extend_from_slice(bytes);
        Ok(())
    }

    fn end_line(&mut self, emit: &mut impl FnMut(FileLine)) -> Result<(), SplitError> {
        if self.partial.last() == Some(&b'\r') {
            self.partial.pop();
        }
        if self.partial.len() > self.max {
            return Err(SplitError::LineTooLong {
                line: self.line,
                max: self.max,
            });
        }
        if !self.partial.iter().all(u8::is_ascii_whitespace) {
            emit(FileLine {
                line: self.line,
                content: std::mem::take(&mut self.partial),
            });
        }
        self.partial.clear();
        self.line = self.line.checked_add(1).ok_or(SplitError::TooManyLines)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(chunks: &[&[u8]], max: usize) -> Result<(Vec<(u32, String)>, u32), SplitError> {
        let mut splitter = Splitter::new(max);
        let mut lines = Vec::new();
        let mut emit = |l: FileLine| lines.push((l.line, String::from_utf8(l.content).unwrap()));
        for chunk in chunks {
            splitter.push(chunk, &mut emit)?;
        }
        let total = splitter.finish(&mut emit)?;
        Ok((lines, total))
    }

    #[test]
    fn lines_keep_their_numbers_across_chunks_blank_lines_and_crlf() {
        let (lines, total) =
            split(&[b"{\"a\":1}\r\n\n  \n{\"b\"", b":2}\n{\"c\":3}"], 100).unwrap();
        assert_eq!(
            lines,
            vec![
                (1, "{\"a\":1}".into()),
                (4, "{\"b\":2}".into()),
                (5, "{\"c\":3}".into())
            ]
        );
        assert_eq!(total, 5);
        assert_eq!(split(&[b"x\n"], 100).unwrap().1, 1);
        assert_eq!(split(&[b""], 100).unwrap(), (vec![], 0));
    }

    #[test]
    fn every_way_of_cutting_a_file_into_chunks_gives_the_same_lines() {
        let file: &[u8] = b"{\"id\":1}\r\n\n{\"id\":22}\n   \r\n{\"id\":333}";
        let whole = split(&[file], 64).unwrap();
        for a in 0..=file.len() {
            for b in a..=file.len() {
                let parts = [&file[..a], &file[a..b], &file[b..]];
                assert_eq!(split(&parts, 64).unwrap(), whole, "cut at {a} and {b}");
            }
        }
    }

    #[test]
    fn a_line_over_the_limit_is_named_before_it_is_held_whole() {
        let err = split(&[b"short\n", b"0123456789", b"0123456789"], 15).unwrap_err();
        assert_eq!(err, SplitError::LineTooLong { line: 2, max: 15 });
        // Exactly the limit passes, with or without a \r before the line end.
        assert!(split(&[b"0123456789\r\n"], 10).is_ok());
        assert!(split(&[b"0123456789"], 10).is_ok());
        assert!(split(&[b"0123456789x\n"], 10).is_err());
    }
}
