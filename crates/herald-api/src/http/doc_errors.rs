//! The error answers of the OpenAPI document. Handlers declare the answers that are theirs
//! (a `409` for a taken uid, a `413` for a payload over the limit); the ones that come from
//! the layers every request passes through are declared here, once, on every operation, so
//! that a client generated from the document knows every status it can be given:
//!
//! - `400`: a body or parameter that cannot be read; `422`: one that breaks a rule;
//! - `401`, `403`: no valid token, or one without access (routes that need a token);
//! - `404`: an id in the path that names nothing (routes with ids);
//! - `409`, `413`: a conflict with what exists, a body over the size limit (routes that
//!   write);
//! - `429`, `503`: a token over its rate limit, or Herald shedding load or without its
//!   store, both with `Retry-After`.

use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{HttpMethod, Operation};
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, RefOr, Response, ResponseBuilder};

/// Adds the answers every layer may give to each operation that does not declare them.
pub fn declare(doc: &mut OpenApi) {
    for (path, item) in doc.paths.paths.iter_mut() {
        let has_ids = path.contains('{');
        let methods = [
            (HttpMethod::Get, item.get.as_mut()),
            (HttpMethod::Head, item.head.as_mut()),
            (HttpMethod::Post, item.post.as_mut()),
            (HttpMethod::Put, item.put.as_mut()),
            (HttpMethod::Patch, item.patch.as_mut()),
            (HttpMethod::Delete, item.delete.as_mut()),
        ];
        for (method, operation) in methods {
            if let Some(operation) = operation {
                declare_for(operation, &method, has_ids);
            }
        }
    }
}

fn declare_for(operation: &mut Operation, method: &HttpMethod, has_ids: bool) {
    let public = operation
        .security
        .as_ref()
        .is_some_and(|s| s.iter().all(|req| req == &Default::default()));
    let writes = matches!(
        method,
        HttpMethod::Post | HttpMethod::Put | HttpMethod::Patch
    );
    let mut add = |status: &str, response: Response| {
        operation
            .responses
            .responses
            .entry(status.to_owned())
            .or_insert(RefOr::T(response));
    };
    add(
        "400",
        error("The request could not be read: malformed JSON, or a parameter of the wrong type."),
    );
    add("422", validation());
    if !public {
        add("401", error("No token, or one Herald does not know."));
        add("403", error("The token may not do this (another application, or a portal session without the capability)."));
    }
    if has_ids {
        add(
            "404",
            error("An id in the path names nothing this token can see."),
        );
    }
    if writes {
        add("409", error("The request conflicts with what exists (a uid or event id taken, a change made meanwhile)."));
        add("413", error("The body is over the size limit."));
    }
    add("429", retry_later("The token is over its rate limit."));
    add(
        "503",
        retry_later("Herald is shedding load, or cannot reach its store."),
    );
}

fn error(description: &str) -> Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("HttpErrorOut")))
                .build(),
        )
        .build()
}

fn validation() -> Response {
    ResponseBuilder::new()
        .description("A field or parameter breaks a rule; each one is listed.")
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("HttpValidationError")))
                .build(),
        )
        .build()
}

fn retry_later(description: &str) -> Response {
    let mut response = error(description);
    let seconds = ObjectBuilder::new()
        .schema_type(Type::Integer)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int32)));
    response.headers.insert(
        "Retry-After".to_owned(),
        HeaderBuilder::new()
            .schema(seconds)
            .description(Some("Seconds to wait before trying again."))
            .build(),
    );
    response
}
