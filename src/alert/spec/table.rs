//! A serde deserializer over a parsed TOML table whose error type is ours, so a channel table's
//! errors arrive typed: serde calls [`TableError::missing_field`], `unknown_field` and
//! `unknown_variant` with the field or variant name, and we keep it instead of reading it back
//! out of a message. A value of the wrong type is reported through `invalid_type` with the value
//! itself; the key holding that value is the field.
//!
//! Only what a channel table can hold is supported: strings, integers, floats, booleans,
//! datetimes (as their text), arrays and tables. No I/O.

use std::fmt::{self, Display};

use serde::de::value::{MapDeserializer, SeqDeserializer};
use serde::de::{self, Deserialize, IntoDeserializer, Unexpected, Visitor};

/// Deserializes `T` from `table`.
pub(super) fn deserialize<'de, T: Deserialize<'de>>(table: toml::Table) -> Result<T, Located> {
    let value = toml::Value::Table(table.clone());
    T::deserialize(TableValue(value)).map_err(|error| Located { error, table })
}

/// What serde reported, typed.
#[derive(Debug)]
pub(super) enum TableError {
    Missing(&'static str),
    Unknown {
        field: String,
        expected: &'static [&'static str],
    },
    UnknownVariant {
        variant: String,
        expected: &'static [&'static str],
    },
    /// A value of the wrong type or range; `value` is the offending value, when it is a scalar.
    Invalid {
        value: Option<toml::Value>,
        message: String,
    },
    Other(String),
}

impl Display for TableError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TableError::Missing(field) => write!(f, "missing field `{field}`"),
            TableError::Unknown { field, expected } => write!(
                f,
                "unknown field `{field}`; expected one of: {}",
                expected.join(", ")
            ),
            TableError::UnknownVariant { variant, expected } => write!(
                f,
                "unknown value \"{variant}\"; one of {}",
                expected.join(", ")
            ),
            TableError::Invalid { message, .. } | TableError::Other(message) => {
                f.write_str(message)
            }
        }
    }
}

impl std::error::Error for TableError {}

impl de::Error for TableError {
    fn custom<T: Display>(msg: T) -> Self {
        TableError::Other(msg.to_string())
    }

    fn missing_field(field: &'static str) -> Self {
        TableError::Missing(field)
    }

    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        TableError::Unknown {
            field: field.to_owned(),
            expected,
        }
    }

    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Self {
        TableError::UnknownVariant {
            variant: variant.to_owned(),
            expected,
        }
    }

    fn invalid_type(unexpected: Unexpected<'_>, expected: &dyn de::Expected) -> Self {
        TableError::Invalid {
            value: scalar(&unexpected),
            message: format!("invalid type: {unexpected}, expected {expected}"),
        }
    }

    fn invalid_value(unexpected: Unexpected<'_>, expected: &dyn de::Expected) -> Self {
        TableError::Invalid {
            value: scalar(&unexpected),
            message: format!("invalid value: {unexpected}, expected {expected}"),
        }
    }
}

fn scalar(unexpected: &Unexpected<'_>) -> Option<toml::Value> {
    Some(match *unexpected {
        Unexpected::Bool(b) => toml::Value::Boolean(b),
        Unexpected::Signed(i) => toml::Value::Integer(i),
        Unexpected::Unsigned(u) => toml::Value::Integer(i64::try_from(u).ok()?),
        Unexpected::Float(x) => toml::Value::Float(x),
        Unexpected::Str(s) => toml::Value::String(s.to_owned()),
        _ => return None,
    })
}

/// A [`TableError`] with the table it came from, to find the key of an invalid value.
#[derive(Debug)]
pub(super) struct Located {
    error: TableError,
    table: toml::Table,
}

impl Located {
    /// The field the error is about (empty when the value does not tell) and the message,
    /// redacted. `tags` are the variants of the table's tag field, `tag` its name: an unknown
    /// one is reported on that field.
    pub(super) fn field_and_message(self, tag: &str, tags: &[&str]) -> (String, String) {
        let message = crate::secret::scrub(&self.error.to_string());
        let field = match self.error {
            TableError::Missing(field) => field.to_owned(),
            TableError::Unknown { field, .. } => field,
            // The tag is the only variant chosen by name at the top of a channel table; a
            // variant of a value (`region = "mars"`) is found by its value like other errors.
            TableError::UnknownVariant { expected, .. } if expected == tags => tag.to_owned(),
            TableError::UnknownVariant { variant, .. } => {
                key_holding(&self.table, &toml::Value::String(variant)).unwrap_or_default()
            }
            TableError::Invalid {
                value: Some(value), ..
            } => key_holding(&self.table, &value).unwrap_or_default(),
            TableError::Invalid { value: None, .. } | TableError::Other(_) => String::new(),
        };
        (field, message)
    }
}

/// The one key of `table` whose value is `value` (or a list holding it); `None` when no key or
/// several do, since then the value does not tell which field it was.
fn key_holding(table: &toml::Table, value: &toml::Value) -> Option<String> {
    let holds = |v: &toml::Value| match v {
        toml::Value::Array(items) => items.contains(value),
        other => other == value,
    };
    let mut keys = table.iter().filter(|(_, v)| holds(v)).map(|(k, _)| k);
    let key = keys.next()?;
    keys.next().is_none().then(|| key.clone())
}

/// One TOML value as a deserializer with [`TableError`].
struct TableValue(toml::Value);

impl<'de> IntoDeserializer<'de, TableError> for TableValue {
    type Deserializer = TableValue;

    fn into_deserializer(self) -> TableValue {
        self
    }
}

impl<'de> de::Deserializer<'de> for TableValue {
    type Error = TableError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TableError> {
        match self.0 {
            toml::Value::String(s) => visitor.visit_string(s),
            toml::Value::Integer(i) => visitor.visit_i64(i),
            toml::Value::Float(x) => visitor.visit_f64(x),
            toml::Value::Boolean(b) => visitor.visit_bool(b),
            toml::Value::Datetime(d) => visitor.visit_string(d.to_string()),
            toml::Value::Array(items) => {
                let mut seq = SeqDeserializer::new(items.into_iter().map(TableValue));
                let value = visitor.visit_seq(&mut seq)?;
                seq.end()?;
                Ok(value)
            }
            toml::Value::Table(table) => {
                let mut map =
                    MapDeserializer::new(table.into_iter().map(|(k, v)| (k, TableValue(v))));
                let value = visitor.visit_map(&mut map)?;
                map.end()?;
                Ok(value)
            }
        }
    }

    /// A key that is present holds a value: TOML has no null.
    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, TableError> {
        visitor.visit_some(self)
    }

    /// Unit variants by name (`region = "eu"`); anything else is left to `deserialize_any`.
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, TableError> {
        match self.0 {
            toml::Value::String(s) => visitor.visit_enum(s.into_deserializer()),
            other => TableValue(other).deserialize_any(visitor),
        }
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct newtype_struct seq tuple
        tuple_struct map struct identifier ignored_any
    }
}
