//! The query language of document lists and aggregations, parsed into a tree whose every
//! attribute is one the collection declares and whose every value has that attribute's type.
//! `repo` renders the tree as parameterised SQL; nothing a client sends becomes SQL text.
//!
//! A filter is a condition `{"attribute": "age", "op": "greaterThan", "value": 30}`, a group
//! `{"and": [...]}` / `{"or": [...]}`, or a list (an implicit `and`).

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::error::DatabaseError;
use super::schema::{self, Attribute, AttributeType, Index, IndexType};
use super::settings::DatabaseSettings;

/// Something a query can name: a declared attribute or a system field.
#[derive(Debug, Clone)]
pub enum Field {
    Id,
    CreatedAt,
    UpdatedAt,
    Attr(Attribute),
}

impl Field {
    pub fn resolve(name: &str, attributes: &[Attribute]) -> Option<Field> {
        match name {
            "$id" => Some(Field::Id),
            "$createdAt" => Some(Field::CreatedAt),
            "$updatedAt" => Some(Field::UpdatedAt),
            _ => attributes
                .iter()
                .find(|a| a.key == name)
                .cloned()
                .map(Field::Attr),
        }
    }

    fn comparable(&self) -> bool {
        !matches!(self, Field::Attr(a) if a.array || a.kind == AttributeType::Json)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Equal,
    NotEqual,
    LessThan,
    LessThanEqual,
    GreaterThan,
    GreaterThanEqual,
    Between,
    In,
    Contains,
    StartsWith,
    EndsWith,
    IsNull,
    IsNotNull,
    Search,
}

impl Op {
    fn parse(name: &str) -> Option<Op> {
        Some(match name {
            "equal" => Op::Equal,
            "notEqual" => Op::NotEqual,
            "lessThan" => Op::LessThan,
            "lessThanEqual" => Op::LessThanEqual,
            "greaterThan" => Op::GreaterThan,
            "greaterThanEqual" => Op::GreaterThanEqual,
            "between" => Op::Between,
            "in" => Op::In,
            "contains" => Op::Contains,
            "startsWith" => Op::StartsWith,
            "endsWith" => Op::EndsWith,
            "isNull" => Op::IsNull,
            "isNotNull" => Op::IsNotNull,
            "search" => Op::Search,
            _ => return None,
        })
    }
}

/// A value of the field's type, ready to bind.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    Text(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Time(DateTime<Utc>),
}

impl Scalar {
    pub fn to_json(&self) -> Value {
        match self {
            Scalar::Text(s) => Value::from(s.as_str()),
            Scalar::Int(n) => Value::from(*n),
            Scalar::Float(f) => Value::from(*f),
            Scalar::Bool(b) => Value::from(*b),
            Scalar::Time(t) => Value::from(schema::format_datetime(*t)),
        }
    }
}

#[derive(Debug, Clone)]
pub enum Filter {
    And(Vec<Filter>),
    Or(Vec<Filter>),
    Cond {
        field: Field,
        op: Op,
        values: Vec<Scalar>,
    },
}

/// One sort key.
#[derive(Debug, Clone)]
pub struct Sort {
    pub field: Field,
    pub descending: bool,
}

/// A sort spelled as one string (`-year,$id`), carried in a page's cursor so that a cursor
/// used under another sort is refused rather than read as a position it never was.
pub fn sort_signature(sort: &[Sort]) -> String {
    let keys: Vec<String> = sort
        .iter()
        .map(|s| {
            let name = match &s.field {
                Field::Id => "$id",
                Field::CreatedAt => "$createdAt",
                Field::UpdatedAt => "$updatedAt",
                Field::Attr(a) => &a.key,
            };
            format!("{}{name}", if s.descending { "-" } else { "" })
        })
        .collect();
    keys.join(",")
}

fn invalid(path: &str, detail: impl std::fmt::Display) -> DatabaseError {
    DatabaseError::InvalidQuery(format!("{path}: {detail}"))
}

fn unknown(path: &str, name: &str) -> DatabaseError {
    let shown: String = name.chars().take(64).collect();
    DatabaseError::UnknownAttribute(format!(
        "{path}: `{shown}` is not an attribute of this collection"
    ))
}

/// Parses filters for one collection under the configured complexity caps.
pub struct Parser<'a> {
    pub attributes: &'a [Attribute],
    pub indexes: &'a [Index],
    pub limits: &'a DatabaseSettings,
    conditions: usize,
}

impl<'a> Parser<'a> {
    pub fn new(
        attributes: &'a [Attribute],
        indexes: &'a [Index],
        limits: &'a DatabaseSettings,
    ) -> Self {
        Self {
            attributes,
            indexes,
            limits,
            conditions: 0,
        }
    }

    pub fn filter(&mut self, value: &Value) -> Result<Filter, DatabaseError> {
        self.node(value, "filter", 1)
    }

    fn node(&mut self, value: &Value, path: &str, depth: usize) -> Result<Filter, DatabaseError> {
        if depth > self.limits.max_filter_depth {
            return Err(DatabaseError::QueryTooComplex(format!(
                "{path}: filters nest at most {} levels",
                self.limits.max_filter_depth
            )));
        }
        let group =
            |this: &mut Self, items: &Value, name: &str| -> Result<Vec<Filter>, DatabaseError> {
                let list = items
                    .as_array()
                    .ok_or_else(|| invalid(path, format!("`{name}` takes a list of filters")))?;
                if list.is_empty() {
                    return Err(invalid(path, format!("`{name}` needs at least one filter")));
                }
                list.iter()
                    .enumerate()
                    .map(|(i, f)| this.node(f, &format!("{path}.{name}[{i}]"), depth + 1))
                    .collect()
            };
        match value {
            Value::Array(_) => Ok(Filter::And(group(self, value, "and")?)),
            Value::Object(map) if map.len() == 1 && map.contains_key("and") => {
                Ok(Filter::And(group(self, &map["and"], "and")?))
            }
            Value::Object(map) if map.len() == 1 && map.contains_key("or") => {
                Ok(Filter::Or(group(self, &map["or"], "or")?))
            }
            Value::Object(map) => {
                if let Some(extra) = map
                    .keys()
                    .find(|k| !["attribute", "op", "value"].contains(&k.as_str()))
                {
                    let shown: String = extra.chars().take(64).collect();
                    return Err(invalid(
                        path,
                        format!(
                            "unexpected key `{shown}` (a condition has attribute, op and value)"
                        ),
                    ));
                }
                self.conditions += 1;
                if self.conditions > self.limits.max_filter_conditions {
                    return Err(DatabaseError::QueryTooComplex(format!(
                        "a filter holds at most {} conditions",
                        self.limits.max_filter_conditions
                    )));
                }
                self.condition(map, path)
            }
            _ => Err(invalid(
                path,
                "must be a condition object, {\"and\": [...]}, {\"or\": [...]} or a list",
            )),
        }
    }

    fn condition(
        &self,
        map: &serde_json::Map<String, Value>,
        path: &str,
    ) -> Result<Filter, DatabaseError> {
        let name = map
            .get("attribute")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid(path, "`attribute` must be a string"))?;
        let field = Field::resolve(name, self.attributes)
            .ok_or_else(|| unknown(&format!("{path}.attribute"), name))?;
        let op_name = map
            .get("op")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid(path, "`op` must be a string"))?;
        let op = Op::parse(op_name).ok_or_else(|| {
            invalid(
                &format!("{path}.op"),
                "must be one of equal, notEqual, lessThan, lessThanEqual, greaterThan, greaterThanEqual, between, in, contains, startsWith, endsWith, isNull, isNotNull, search",
            )
        })?;
        let value = map.get("value").unwrap_or(&Value::Null);
        let vpath = format!("{path}.value");
        let not_for = |what: &str| {
            invalid(
                path,
                format!("`{op_name}` does not apply to {what} `{name}`"),
            )
        };
        let is_array = matches!(&field, Field::Attr(a) if a.array);
        let text_like = match &field {
            Field::Id => true,
            Field::Attr(a) => a.kind.is_text() && a.kind != AttributeType::Datetime,
            _ => false,
        };
        let values = match op {
            Op::IsNull | Op::IsNotNull => {
                if !matches!(field, Field::Attr(_)) {
                    return Err(not_for("system field"));
                }
                Vec::new()
            }
            Op::Search => {
                let Field::Attr(a) = &field else {
                    return Err(not_for("system field"));
                };
                let indexed = self
                    .indexes
                    .iter()
                    .any(|i| i.kind == IndexType::Fulltext && i.attributes.first() == Some(&a.key));
                if !indexed {
                    return Err(DatabaseError::FulltextIndexRequired(format!(
                        "{path}: `search` needs a fulltext index on `{name}`"
                    )));
                }
                vec![Scalar::Text(text(value, &vpath)?)]
            }
            Op::Contains if is_array => vec![self.scalar(&field, value, &vpath)?],
            Op::Contains | Op::StartsWith | Op::EndsWith => {
                if !text_like {
                    return Err(not_for("non-string"));
                }
                vec![Scalar::Text(text(value, &vpath)?)]
            }
            _ if !field.comparable() => return Err(not_for("array or json")),
            Op::Between => {
                let pair = value
                    .as_array()
                    .filter(|a| a.len() == 2)
                    .ok_or_else(|| invalid(&vpath, "`between` takes [low, high]"))?;
                vec![
                    self.scalar(&field, &pair[0], &vpath)?,
                    self.scalar(&field, &pair[1], &vpath)?,
                ]
            }
            Op::In => {
                let list = value
                    .as_array()
                    .filter(|a| !a.is_empty())
                    .ok_or_else(|| invalid(&vpath, "`in` takes a non-empty list"))?;
                if list.len() > self.limits.max_filter_values {
                    return Err(DatabaseError::QueryTooComplex(format!(
                        "{vpath}: `in` takes at most {} values",
                        self.limits.max_filter_values
                    )));
                }
                list.iter()
                    .map(|v| self.scalar(&field, v, &vpath))
                    .collect::<Result<_, _>>()?
            }
            Op::LessThan | Op::LessThanEqual | Op::GreaterThan | Op::GreaterThanEqual if matches!(&field, Field::Attr(a) if a.kind == AttributeType::Boolean) =>
            {
                return Err(not_for("boolean"));
            }
            _ => vec![self.scalar(&field, value, &vpath)?],
        };
        Ok(Filter::Cond { field, op, values })
    }

    /// A filter value of the field's (element) type.
    fn scalar(&self, field: &Field, value: &Value, path: &str) -> Result<Scalar, DatabaseError> {
        let wrong = |what: &str| invalid(path, format!("must be {what}"));
        Ok(match field {
            Field::Id => Scalar::Text(text(value, path)?),
            Field::CreatedAt | Field::UpdatedAt => Scalar::Time(
                value
                    .as_str()
                    .and_then(schema::parse_datetime)
                    .ok_or_else(|| wrong("an RFC 3339 date-time"))?,
            ),
            Field::Attr(a) => match a.kind {
                AttributeType::Integer => {
                    Scalar::Int(value.as_i64().ok_or_else(|| wrong("an integer"))?)
                }
                AttributeType::Float => {
                    Scalar::Float(value.as_f64().ok_or_else(|| wrong("a number"))?)
                }
                AttributeType::Boolean => {
                    Scalar::Bool(value.as_bool().ok_or_else(|| wrong("true or false"))?)
                }
                AttributeType::Datetime => Scalar::Text(
                    value
                        .as_str()
                        .and_then(schema::parse_datetime)
                        .map(schema::format_datetime)
                        .ok_or_else(|| wrong("an RFC 3339 date-time"))?,
                ),
                AttributeType::Json => return Err(wrong("compared only with isNull or isNotNull")),
                _ => Scalar::Text(text(value, path)?),
            },
        })
    }

    /// `title,-published_at`: a leading `-` sorts descending.
    pub fn sort(&self, spec: &[String]) -> Result<Vec<Sort>, DatabaseError> {
        if spec.len() > self.limits.max_sort_attributes {
            return Err(DatabaseError::QueryTooComplex(format!(
                "sort: at most {} attributes",
                self.limits.max_sort_attributes
            )));
        }
        spec.iter()
            .map(|s| {
                let (name, descending) = match s.strip_prefix('-') {
                    Some(rest) => (rest, true),
                    None => (s.strip_prefix('+').unwrap_or(s), false),
                };
                let field =
                    Field::resolve(name, self.attributes).ok_or_else(|| unknown("sort", name))?;
                if !field.comparable() {
                    return Err(invalid(
                        "sort",
                        format!("`{name}` is an array or json and cannot be sorted on"),
                    ));
                }
                Ok(Sort { field, descending })
            })
            .collect()
    }

    /// Attribute keys to return (system fields always come back).
    pub fn select(&self, spec: &[String]) -> Result<Vec<String>, DatabaseError> {
        spec.iter()
            .filter(|s| !s.starts_with('$'))
            .map(|s| {
                self.attributes
                    .iter()
                    .find(|a| &a.key == s)
                    .map(|a| a.key.clone())
                    .ok_or_else(|| unknown("select", s))
            })
            .collect()
    }

    /// The attribute an aggregation groups or computes over.
    pub fn attribute(&self, name: &str, path: &str) -> Result<Field, DatabaseError> {
        let field = Field::resolve(name, self.attributes).ok_or_else(|| unknown(path, name))?;
        if !field.comparable() {
            return Err(invalid(path, format!("`{name}` is an array or json")));
        }
        Ok(field)
    }
}

fn text(value: &Value, path: &str) -> Result<String, DatabaseError> {
    let s = value
        .as_str()
        .ok_or_else(|| invalid(path, "must be a string"))?;
    if s.contains('\0') {
        return Err(invalid(path, "must not contain NUL characters"));
    }
    Ok(s.to_owned())
}

/// Splits a comma-separated query parameter (`sort=a,-b`).
pub fn split_list(param: Option<&str>) -> Vec<String> {
    param
        .map(|p| {
            p.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn attrs() -> Vec<Attribute> {
        serde_json::from_value(json!([
            {"key": "age", "type": "integer"},
            {"key": "name", "type": "string"},
            {"key": "tags", "type": "string", "array": true},
            {"key": "meta", "type": "json"}
        ]))
        .unwrap()
    }

    #[test]
    fn values_take_the_attribute_type() {
        let attrs = attrs();
        let limits = DatabaseSettings::default();
        let mut p = Parser::new(&attrs, &[], &limits);
        let f = p
            .filter(&json!({"attribute": "age", "op": "greaterThan", "value": 3}))
            .unwrap();
        assert!(
            matches!(f, Filter::Cond { op: Op::GreaterThan, ref values, .. } if values == &[Scalar::Int(3)])
        );
        let e = p
            .filter(&json!({"attribute": "age", "op": "equal", "value": "3"}))
            .unwrap_err();
        assert_eq!(e.to_api().code(), "invalid_query");
    }

    #[test]
    fn unknown_attributes_and_deep_trees_are_refused() {
        let attrs = attrs();
        let limits = DatabaseSettings::default();
        let e = Parser::new(&attrs, &[], &limits)
            .filter(&json!({"attribute": "age'; drop table x;--", "op": "equal", "value": 1}))
            .unwrap_err();
        assert_eq!(e.to_api().code(), "unknown_attribute");
        let mut deep = json!({"attribute": "age", "op": "equal", "value": 1});
        for _ in 0..10 {
            deep = json!({"or": [deep]});
        }
        assert_eq!(
            Parser::new(&attrs, &[], &limits)
                .filter(&deep)
                .unwrap_err()
                .to_api()
                .code(),
            "query_too_complex"
        );
        let e = Parser::new(&attrs, &[], &limits)
            .filter(&json!({"attribute": "meta", "op": "equal", "value": 1}))
            .unwrap_err();
        assert_eq!(e.to_api().code(), "invalid_query");
    }

    #[test]
    fn sort_names_direction_and_checks_attributes() {
        let attrs = attrs();
        let limits = DatabaseSettings::default();
        let p = Parser::new(&attrs, &[], &limits);
        let s = p.sort(&split_list(Some("-age, name"))).unwrap();
        assert!(s[0].descending && !s[1].descending);
        assert_eq!(
            p.sort(&["tags".into()]).unwrap_err().to_api().code(),
            "invalid_query"
        );
        assert_eq!(
            p.sort(&["nope".into()]).unwrap_err().to_api().code(),
            "unknown_attribute"
        );
    }
}
