//! A collection's declared schema (attributes and indexes) and the checks a document must pass
//! against it. Pure: no SQL here, so every rule is testable without a database.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;
use uuid::Uuid;
use validator::{ValidateEmail, ValidateUrl};

use crate::platform::error::FieldError;

/// The longest string attribute unless `size` says otherwise.
pub const DEFAULT_STRING_SIZE: u32 = 1024;
const MAX_STRING_SIZE: u32 = 1_000_000;
const MAX_ENUM_ELEMENTS: usize = 100;
/// Deepest nesting inside a `json` attribute.
const MAX_JSON_DEPTH: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AttributeType {
    String,
    Integer,
    Float,
    Boolean,
    /// ISO 8601 / RFC 3339; stored in UTC with millisecond precision.
    Datetime,
    Email,
    Url,
    Enum,
    /// Any JSON object or array; only `isNull` / `isNotNull` may filter on it.
    Json,
}

impl AttributeType {
    /// Stored as JSON text and compared as text (datetimes are fixed-width UTC, so text order
    /// is time order).
    pub fn is_text(self) -> bool {
        matches!(
            self,
            Self::String | Self::Email | Self::Url | Self::Enum | Self::Datetime
        )
    }
}

/// One declared attribute of a collection.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"key": "title", "type": "string", "size": 200, "required": true}))]
pub struct Attribute {
    /// Letters, digits and underscores, starting with a letter; at most 64 characters.
    pub key: String,
    #[serde(rename = "type")]
    pub kind: AttributeType,
    #[serde(default)]
    pub required: bool,
    /// A list of values of `type` instead of one.
    #[serde(default)]
    pub array: bool,
    /// Strings: the most characters (default 1024).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u32>,
    /// Integers and floats: the smallest value allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<f64>)]
    pub min: Option<serde_json::Number>,
    /// Integers and floats: the largest value allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<f64>)]
    pub max: Option<serde_json::Number>,
    /// Enums: the allowed values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub elements: Option<Vec<String>>,
    /// Filled in when a document leaves the attribute out (and given to existing documents
    /// when the attribute is added later).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub default: Option<Value>,
    /// Shorthand for a unique index on this attribute alone (named after it).
    #[serde(default)]
    pub unique: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum IndexType {
    /// Equality, ranges and sorting on the listed attributes, in order.
    Key,
    /// A key index that also refuses a second document with the same values (409).
    Unique,
    /// Word search (`search` filter) on one string attribute.
    Fulltext,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SortOrder {
    Asc,
    Desc,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, Default)]
#[serde(rename_all = "lowercase")]
pub enum IndexStatus {
    /// In use.
    #[default]
    Ready,
    /// Being built without blocking writes; queries work meanwhile, only slower.
    Building,
}

/// An index over one or more attributes.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"key": "by_author_date", "type": "key", "attributes": ["author", "published_at"], "orders": ["asc", "desc"]}))]
pub struct Index {
    /// Letters, digits and underscores, starting with a letter; at most 64 characters.
    pub key: String,
    #[serde(rename = "type")]
    pub kind: IndexType,
    pub attributes: Vec<String>,
    /// One per attribute (default ascending).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub orders: Vec<SortOrder>,
    /// The PostgreSQL index's name, set by the server (whatever a client sends is replaced).
    #[serde(default)]
    #[schema(read_only)]
    pub pg_name: String,
    /// Set by the server.
    #[serde(default)]
    #[schema(read_only)]
    pub status: IndexStatus,
}

impl Index {
    pub fn new_pg_name() -> String {
        format!("ix_{}", Uuid::now_v7().simple())
    }
}

/// `unique: true` on an attribute is a unique index on it alone, named after it. Every index
/// in `indexes` gets a new PostgreSQL name and is `ready`: they are built in the caller's
/// transaction, so ready when it commits.
pub fn unique_indexes(attributes: &[Attribute], indexes: &mut Vec<Index>) {
    for a in attributes.iter().filter(|a| a.unique) {
        if !indexes.iter().any(|i| i.key == a.key) {
            indexes.push(Index {
                key: a.key.clone(),
                kind: IndexType::Unique,
                attributes: vec![a.key.clone()],
                orders: Vec::new(),
                pg_name: String::new(),
                status: IndexStatus::Ready,
            });
        }
    }
    for i in indexes.iter_mut() {
        i.pg_name = Index::new_pg_name();
        i.status = IndexStatus::Ready;
    }
}

/// Keys of collections, attributes and indexes: safe to name in SQL text, which is why they
/// are held to this and nothing looser.
pub fn valid_key(key: &str) -> bool {
    let mut chars = key.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic())
        && key.len() <= 64
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn field_error(field: impl Into<String>, code: &str, message: impl Into<String>) -> FieldError {
    FieldError {
        field: field.into(),
        code: code.into(),
        message: message.into(),
    }
}

/// Checks an attribute definition; `path` prefixes the field names of the errors.
pub fn check_attribute(attr: &Attribute, path: &str) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let mut fail = |field: &str, code: &str, message: String| {
        errors.push(field_error(format!("{path}{field}"), code, message));
    };
    if !valid_key(&attr.key) {
        fail(
            "key",
            "key",
            "must start with a letter and hold only letters, digits and _ (at most 64)".into(),
        );
    }
    let numeric = matches!(attr.kind, AttributeType::Integer | AttributeType::Float);
    if attr.size.is_some() && attr.kind != AttributeType::String {
        fail(
            "size",
            "not_applicable",
            "only string attributes have a size".into(),
        );
    }
    if let Some(size) = attr.size
        && !(1..=MAX_STRING_SIZE).contains(&size)
    {
        fail(
            "size",
            "range",
            format!("must be between 1 and {MAX_STRING_SIZE}"),
        );
    }
    if (attr.min.is_some() || attr.max.is_some()) && !numeric {
        fail(
            "min",
            "not_applicable",
            "only integer and float attributes have min and max".into(),
        );
    }
    if attr.kind == AttributeType::Integer {
        for (name, bound) in [("min", &attr.min), ("max", &attr.max)] {
            if bound.as_ref().is_some_and(|n| n.as_i64().is_none()) {
                fail(name, "type", "must be an integer".into());
            }
        }
    }
    if let (Some(min), Some(max)) = (
        attr.min.as_ref().and_then(|n| n.as_f64()),
        attr.max.as_ref().and_then(|n| n.as_f64()),
    ) && min > max
    {
        fail("max", "range", "must not be below min".into());
    }
    match (&attr.elements, attr.kind) {
        (None, AttributeType::Enum) => fail(
            "elements",
            "required",
            "enum attributes list their allowed values".into(),
        ),
        (Some(_), kind) if kind != AttributeType::Enum => fail(
            "elements",
            "not_applicable",
            "only enum attributes have elements".into(),
        ),
        (Some(elements), _) => {
            let mut sorted: Vec<&String> = elements.iter().collect();
            sorted.sort();
            sorted.dedup();
            if elements.is_empty() || elements.len() > MAX_ENUM_ELEMENTS {
                fail(
                    "elements",
                    "length",
                    format!("must hold between 1 and {MAX_ENUM_ELEMENTS} values"),
                );
            } else if sorted.len() != elements.len()
                || elements.iter().any(|e| e.is_empty() || e.len() > 255)
            {
                fail(
                    "elements",
                    "invalid",
                    "values must be distinct, non-empty and at most 255 characters".into(),
                );
            }
        }
        _ => {}
    }
    if attr.unique && (attr.array || attr.kind == AttributeType::Json) {
        fail(
            "unique",
            "not_applicable",
            "arrays and json attributes cannot be unique".into(),
        );
    }
    if errors.is_empty()
        && let Some(default) = &attr.default
        && let Err((code, message)) = check_value(attr, default)
    {
        errors.push(field_error(format!("{path}default"), &code, message));
    }
    errors
}

/// Checks an index definition against the attributes it names.
pub fn check_index(index: &Index, attributes: &[Attribute], path: &str) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let mut fail = |field: &str, code: &str, message: String| {
        errors.push(field_error(format!("{path}{field}"), code, message));
    };
    if !valid_key(&index.key) {
        fail(
            "key",
            "key",
            "must start with a letter and hold only letters, digits and _ (at most 64)".into(),
        );
    }
    if index.attributes.is_empty() || index.attributes.len() > 8 {
        fail(
            "attributes",
            "length",
            "must name between 1 and 8 attributes".into(),
        );
    }
    if !index.orders.is_empty() && index.orders.len() != index.attributes.len() {
        fail(
            "orders",
            "length",
            "must give one order per attribute, or none".into(),
        );
    }
    let mut seen = Vec::new();
    for (i, key) in index.attributes.iter().enumerate() {
        if seen.contains(&key) {
            fail(
                &format!("attributes[{i}]"),
                "duplicate",
                format!("`{key}` is listed twice"),
            );
        }
        seen.push(key);
        match attributes.iter().find(|a| &a.key == key) {
            None => fail(
                &format!("attributes[{i}]"),
                "unknown_attribute",
                format!("`{key}` is not an attribute of this collection"),
            ),
            Some(a) if a.kind == AttributeType::Json => fail(
                &format!("attributes[{i}]"),
                "not_indexable",
                format!("`{key}` is json, which cannot be indexed"),
            ),
            Some(a) if a.array && (index.attributes.len() > 1 || index.kind != IndexType::Key) => {
                fail(
                    &format!("attributes[{i}]"),
                    "not_indexable",
                    format!("`{key}` is an array: it can only have a key index of its own"),
                )
            }
            Some(a)
                if index.kind == IndexType::Fulltext
                    && (!a.kind.is_text() || index.attributes.len() > 1) =>
            {
                fail(
                    &format!("attributes[{i}]"),
                    "not_indexable",
                    "a fulltext index covers exactly one string attribute".into(),
                )
            }
            Some(_) => {}
        }
    }
    errors
}

/// How a document body is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A whole document: missing attributes take their default or fail when required.
    Whole,
    /// Only the attributes present are checked (the result is merged, then checked whole).
    Partial,
}

/// Checks `data` against the schema and returns it normalised (defaults filled in,
/// datetimes in UTC), or one error per offending field.
pub fn check_document(
    attributes: &[Attribute],
    data: &Value,
    mode: Mode,
    prefix: &str,
) -> Result<Map<String, Value>, Vec<FieldError>> {
    let Some(object) = data.as_object() else {
        return Err(vec![field_error(
            prefix.trim_end_matches('.'),
            "type",
            "must be a JSON object",
        )]);
    };
    let mut errors = Vec::new();
    let mut out = Map::new();
    for key in object.keys() {
        if !attributes.iter().any(|a| &a.key == key) {
            errors.push(field_error(
                format!("{prefix}{}", printable(key)),
                "unknown_attribute",
                "is not an attribute of this collection",
            ));
        }
    }
    for attr in attributes {
        let value = match object.get(&attr.key) {
            Some(v) => v.clone(),
            None if mode == Mode::Partial => continue,
            None => match &attr.default {
                Some(d) => d.clone(),
                None if attr.required => {
                    errors.push(field_error(
                        format!("{prefix}{}", attr.key),
                        "required",
                        "is required",
                    ));
                    continue;
                }
                None => Value::Null,
            },
        };
        match check_value(attr, &value) {
            Ok(v) => {
                out.insert(attr.key.clone(), v);
            }
            Err((code, message)) => {
                errors.push(field_error(format!("{prefix}{}", attr.key), &code, message))
            }
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// A key as it may be echoed back in an error: attackers' keys are truncated, not reflected
/// whole.
fn printable(key: &str) -> String {
    key.chars().take(64).collect()
}

/// Checks one value (null, a scalar or, for arrays, a list) and returns it normalised.
pub fn check_value(attr: &Attribute, value: &Value) -> Result<Value, (String, String)> {
    if value.is_null() {
        return if attr.required {
            Err(("required".into(), "is required".into()))
        } else {
            Ok(Value::Null)
        };
    }
    if attr.array {
        let Some(items) = value.as_array() else {
            return Err(("type".into(), "must be an array".into()));
        };
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            if item.is_null() {
                return Err(("type".into(), format!("item {i} must not be null")));
            }
            out.push(check_scalar(attr, item).map_err(|(c, m)| (c, format!("item {i} {m}")))?);
        }
        return Ok(Value::Array(out));
    }
    check_scalar(attr, value)
}

fn check_scalar(attr: &Attribute, value: &Value) -> Result<Value, (String, String)> {
    let err = |code: &str, message: String| Err((code.to_owned(), message));
    match attr.kind {
        AttributeType::String | AttributeType::Email | AttributeType::Url | AttributeType::Enum => {
            let Some(s) = value.as_str() else {
                return err("type", "must be a string".into());
            };
            let size = attr.size.unwrap_or(DEFAULT_STRING_SIZE) as usize;
            if s.chars().count() > size {
                return err("length", format!("must be at most {size} characters long"));
            }
            if s.contains('\0') {
                return err("invalid", "must not contain NUL characters".into());
            }
            match attr.kind {
                AttributeType::Email if !s.validate_email() => {
                    err("email", "must be a valid email address".into())
                }
                AttributeType::Url
                    if !(s.validate_url()
                        && (s.starts_with("http://") || s.starts_with("https://"))) =>
                {
                    err("url", "must be an http or https URL".into())
                }
                AttributeType::Enum
                    if !attr
                        .elements
                        .as_ref()
                        .is_some_and(|e| e.iter().any(|x| x == s)) =>
                {
                    err(
                        "enum",
                        format!(
                            "must be one of: {}",
                            attr.elements.as_deref().unwrap_or_default().join(", ")
                        ),
                    )
                }
                _ => Ok(value.clone()),
            }
        }
        AttributeType::Integer => {
            let Some(n) = value.as_i64() else {
                return err("type", "must be an integer".into());
            };
            if attr
                .min
                .as_ref()
                .and_then(|m| m.as_i64())
                .is_some_and(|min| n < min)
                || attr
                    .max
                    .as_ref()
                    .and_then(|m| m.as_i64())
                    .is_some_and(|max| n > max)
            {
                return err("range", range_message(attr));
            }
            Ok(value.clone())
        }
        AttributeType::Float => {
            let Some(n) = value.as_f64() else {
                return err("type", "must be a number".into());
            };
            if attr
                .min
                .as_ref()
                .and_then(|m| m.as_f64())
                .is_some_and(|min| n < min)
                || attr
                    .max
                    .as_ref()
                    .and_then(|m| m.as_f64())
                    .is_some_and(|max| n > max)
            {
                return err("range", range_message(attr));
            }
            Ok(value.clone())
        }
        AttributeType::Boolean => match value {
            Value::Bool(_) => Ok(value.clone()),
            _ => err("type", "must be true or false".into()),
        },
        AttributeType::Datetime => match value.as_str().and_then(parse_datetime) {
            Some(t) => Ok(Value::String(format_datetime(t))),
            None => err(
                "datetime",
                "must be an RFC 3339 date-time between years 0 and 9999".into(),
            ),
        },
        AttributeType::Json => {
            if !(value.is_object() || value.is_array()) {
                return err("type", "must be a JSON object or array".into());
            }
            if depth(value) > MAX_JSON_DEPTH {
                return err(
                    "depth",
                    format!("must nest at most {MAX_JSON_DEPTH} levels"),
                );
            }
            Ok(value.clone())
        }
    }
}

fn range_message(attr: &Attribute) -> String {
    match (&attr.min, &attr.max) {
        (Some(min), Some(max)) => format!("must be between {min} and {max}"),
        (Some(min), None) => format!("must be at least {min}"),
        (None, Some(max)) => format!("must be at most {max}"),
        _ => "is out of range".into(),
    }
}

fn depth(value: &Value) -> usize {
    match value {
        Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        Value::Object(map) => 1 + map.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

pub fn parse_datetime(s: &str) -> Option<DateTime<Utc>> {
    let t = DateTime::parse_from_rfc3339(s).ok()?.with_timezone(&Utc);
    let year = chrono::Datelike::year(&t);
    (0..=9999).contains(&year).then_some(t)
}

/// Fixed width, so comparing the text compares the instants (and indexes on text serve
/// ranges and sorting).
pub fn format_datetime(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn attr(v: Value) -> Attribute {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn keys_are_identifiers_only() {
        assert!(valid_key("title_2"));
        for bad in ["", "2x", "a-b", "a'b", "a b", "$id", "é", &"a".repeat(65)] {
            assert!(!valid_key(bad), "{bad}");
        }
    }

    #[test]
    fn datetimes_are_normalised_to_fixed_width_utc() {
        let a = attr(json!({"key": "at", "type": "datetime"}));
        let v = check_value(&a, &json!("2026-01-02T03:04:05+02:00")).unwrap();
        assert_eq!(v, json!("2026-01-02T01:04:05.000Z"));
        assert!(check_value(&a, &json!("yesterday")).is_err());
    }

    #[test]
    fn integers_refuse_fractions_and_bounds() {
        let a = attr(json!({"key": "n", "type": "integer", "min": 0, "max": 10}));
        assert!(check_value(&a, &json!(1.5)).is_err());
        assert!(check_value(&a, &json!(11)).is_err());
        assert!(check_value(&a, &json!(-1)).is_err());
        assert_eq!(check_value(&a, &json!(10)).unwrap(), json!(10));
    }

    #[test]
    fn whole_documents_fill_defaults_and_report_every_field() {
        let attrs = vec![
            attr(json!({"key": "title", "type": "string", "size": 3, "required": true})),
            attr(json!({"key": "n", "type": "integer", "default": 7})),
            attr(json!({"key": "tags", "type": "string", "array": true})),
        ];
        let ok = check_document(&attrs, &json!({"title": "abc"}), Mode::Whole, "").unwrap();
        assert_eq!(
            Value::Object(ok),
            json!({"title": "abc", "n": 7, "tags": null})
        );
        let errors = check_document(
            &attrs,
            &json!({"title": "abcd", "tags": [1], "x": 1}),
            Mode::Whole,
            "data.",
        )
        .unwrap_err();
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["data.x", "data.title", "data.tags"]);
    }
}
