//! JSON Schemas of event types: checked when an event type is saved, applied to payloads.

use herald_core::model::EventType;
use serde_json::Value;

/// The schema that applies to new messages: the one under the highest version key.
fn current_schema(event_type: &EventType) -> Option<&Value> {
    let versions = event_type.schemas.as_ref()?.as_object()?;
    versions
        .iter()
        .max_by_key(|(version, _)| version.parse::<u64>().unwrap_or(0))
        .map(|(_, schema)| schema)
}

/// Checks every schema of an event type compiles; returns `(version, problem)` pairs.
pub fn check_schemas(schemas: &Value) -> Vec<(String, String)> {
    let Some(versions) = schemas.as_object() else {
        return vec![(
            String::new(),
            "must be an object of version → JSON Schema".into(),
        )];
    };
    versions
        .iter()
        .filter_map(|(version, schema)| {
            jsonschema::validator_for(schema)
                .err()
                .map(|e| (version.clone(), e.to_string()))
        })
        .collect()
}

/// The ways `payload` breaks the event type's current schema (empty when it conforms or
/// there is no schema).
pub fn payload_problems(event_type: &EventType, payload: &Value) -> Vec<String> {
    let Some(schema) = current_schema(event_type) else {
        return Vec::new();
    };
    match jsonschema::validator_for(schema) {
        Ok(validator) => validator
            .iter_errors(payload)
            .take(20)
            .map(|e| {
                let at = e.instance_path.to_string();
                if at.is_empty() {
                    e.to_string()
                } else {
                    format!("{at}: {e}")
                }
            })
            .collect(),
        // Schemas are checked when saved; one that no longer compiles validates nothing.
        Err(_) => Vec::new(),
    }
}

/// An example payload from the current schema's `examples`, if it has one.
pub fn example(event_type: &EventType, index: usize) -> Option<Value> {
    current_schema(event_type)?
        .get("examples")?
        .as_array()?
        .get(index)
        .cloned()
}

/// How deep [`generate_example`] follows nested schemas; deeper parts become `null`.
const EXAMPLE_DEPTH: usize = 16;

/// A value that fits `schema`: its own example, default, const or first enum value where it
/// has one, else one built from its type (objects from their properties).
pub fn generate_example(schema: &Value) -> Value {
    example_at(schema, 0)
}

fn example_at(schema: &Value, depth: usize) -> Value {
    let Some(schema) = schema.as_object().filter(|_| depth < EXAMPLE_DEPTH) else {
        return Value::Null;
    };
    let given = schema
        .get("examples")
        .and_then(|e| e.get(0))
        .or_else(|| schema.get("example"))
        .or_else(|| schema.get("default"))
        .or_else(|| schema.get("const"))
        .or_else(|| schema.get("enum").and_then(|e| e.get(0)));
    if let Some(value) = given {
        return value.clone();
    }
    let kind = match schema.get("type") {
        Some(Value::Array(kinds)) => kinds.iter().find(|k| *k != "null").and_then(Value::as_str),
        Some(kind) => kind.as_str(),
        None if schema.contains_key("properties") => Some("object"),
        None => None,
    };
    match kind {
        Some("object") => {
            let properties = schema.get("properties").and_then(Value::as_object);
            let fields = properties.into_iter().flatten();
            Value::Object(
                fields
                    .map(|(name, s)| (name.clone(), example_at(s, depth + 1)))
                    .collect(),
            )
        }
        Some("array") => {
            let items = schema.get("items").map(|s| example_at(s, depth + 1));
            Value::Array(items.into_iter().collect())
        }
        Some("string") => {
            Value::String(string_example(schema.get("format").and_then(Value::as_str)))
        }
        Some("integer") | Some("number") => Value::from(0),
        Some("boolean") => Value::Bool(true),
        _ => Value::Null,
    }
}

fn string_example(format: Option<&str>) -> String {
    match format {
        Some("date-time") => "2024-01-01T00:00:00Z",
        Some("date") => "2024-01-01",
        Some("email") => "user@example.com",
        Some("uri") | Some("url") => "https://example.com",
        Some("uuid") => "00000000-0000-4000-8000-000000000000",
        _ => "string",
    }
    .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn examples_follow_the_schema() {
        let schema = json!({
            "type": "object",
            "properties": {
                "email": {"type": "string", "format": "email"},
                "age": {"type": "integer"},
                "tier": {"enum": ["gold", "silver"]},
                "tags": {"type": "array", "items": {"type": "string"}},
                "note": {"type": ["null", "string"], "example": "hi"}
            }
        });
        assert_eq!(
            generate_example(&schema),
            json!({"email": "user@example.com", "age": 0, "tier": "gold", "tags": ["string"], "note": "hi"})
        );
    }

    #[test]
    fn a_schema_nested_without_end_stops() {
        let mut schema = json!({"type": "string"});
        for _ in 0..100 {
            schema = json!({"type": "object", "properties": {"inner": schema}});
        }
        let example = generate_example(&schema);
        assert!(example.is_object());
    }
}
