//! JSON as RULES.md shows it: a space after each `,` and `:`, one element of the outer array
//! per line. Compact enough to grep, close enough to the contract to read side by side.

use serde::Serialize;
use serde_json::ser::Formatter;
use std::io::{self, Write};

/// A [`Formatter`] for RULES.md's layout.
#[derive(Debug, Default)]
struct Spaced {
    depth: usize,
}

impl Formatter for Spaced {
    fn begin_array<W: ?Sized + Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.depth += 1;
        writer.write_all(b"[")
    }

    fn end_array<W: ?Sized + Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.depth -= 1;
        writer.write_all(b"]")
    }

    fn begin_array_value<W: ?Sized + Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> io::Result<()> {
        match (first, self.depth) {
            (true, _) => Ok(()),
            (false, 1) => writer.write_all(b",\n "),
            (false, _) => writer.write_all(b", "),
        }
    }

    fn begin_object<W: ?Sized + Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.depth += 1;
        writer.write_all(b"{")
    }

    fn end_object<W: ?Sized + Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.depth -= 1;
        writer.write_all(b"}")
    }

    fn begin_object_key<W: ?Sized + Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> io::Result<()> {
        if first {
            Ok(())
        } else {
            writer.write_all(b", ")
        }
    }

    fn begin_object_value<W: ?Sized + Write>(&mut self, writer: &mut W) -> io::Result<()> {
        writer.write_all(b": ")
    }
}

/// `value` as JSON in RULES.md's layout, ending with a newline.
pub fn to_spaced_string<T: Serialize + ?Sized>(value: &T) -> Result<String, serde_json::Error> {
    let mut out = Vec::new();
    value.serialize(&mut serde_json::Serializer::with_formatter(
        &mut out,
        Spaced::default(),
    ))?;
    out.push(b'\n');
    // serde_json writes UTF-8 only.
    String::from_utf8(out).map_err(serde::ser::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn arrays_of_objects_print_one_element_per_line_with_spaces_after_separators() {
        let value =
            json!([{"id": "c1", "s": [{"a": 1, "b": null}, {"a": 2}]}, {"id": "c2", "s": []}]);
        assert_eq!(
            to_spaced_string(&value).expect("test input is valid"),
            "[{\"id\": \"c1\", \"s\": [{\"a\": 1, \"b\": null}, {\"a\": 2}]},\n {\"id\": \"c2\", \"s\": []}]\n"
        );
        assert_eq!(
            to_spaced_string(&json!([])).expect("test input is valid"),
            "[]\n"
        );
    }
}
