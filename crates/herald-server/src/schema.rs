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
