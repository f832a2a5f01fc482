//! What ships besides the code: the container build file, checked line by line for what
//! the image promises (CI has no Docker engine to build it; `.ci/run` builds it where one
//! runs), and the licence texts `Cargo.toml` declares.

use std::path::PathBuf;

fn repo_file(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The instructions of a Dockerfile, continuation lines joined, comments dropped.
fn instructions(dockerfile: &str) -> Vec<(String, String)> {
    let mut joined = Vec::new();
    let mut pending = String::new();
    for line in dockerfile.lines() {
        let line = line.trim();
        if line.starts_with('#') || (line.is_empty() && pending.is_empty()) {
            continue;
        }
        match line.strip_suffix('\\') {
            Some(part) => pending.push_str(part),
            None => joined.push(std::mem::take(&mut pending) + line),
        }
    }
    joined
        .into_iter()
        .map(|line| {
            let (keyword, rest) = line.split_once(' ').unwrap_or((&line, ""));
            (keyword.to_ascii_uppercase(), rest.trim().to_owned())
        })
        .collect()
}

#[test]
fn the_dockerfile_builds_in_one_stage_and_runs_herald_serve_unprivileged_from_another() {
    let steps = instructions(&repo_file("Dockerfile"));
    let known = [
        "FROM",
        "WORKDIR",
        "COPY",
        "RUN",
        "USER",
        "ENV",
        "VOLUME",
        "EXPOSE",
        "ENTRYPOINT",
        "CMD",
    ];
    for (keyword, _) in &steps {
        assert!(known.contains(&keyword.as_str()), "unexpected {keyword}");
    }
    let stages: Vec<usize> = (steps.iter().enumerate())
        .filter(|(_, (k, _))| k == "FROM")
        .map(|(i, _)| i)
        .collect();
    assert!(
        stages.len() >= 2,
        "multi-stage: a build and a runtime stage"
    );
    for &at in &stages {
        let image = steps[at].1.split_whitespace().next().unwrap();
        assert!(
            image.contains(':') && !image.ends_with(":latest"),
            "{image}: base images name a tag"
        );
    }
    let runtime = &steps[*stages.last().unwrap()..];
    let value = |keyword: &str| {
        runtime
            .iter()
            .rev()
            .find(|(k, _)| k == keyword)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("the runtime stage has {keyword}"))
    };
    let user = value("USER");
    assert!(
        !["root", "0", "0:0"].contains(&user),
        "{user}: the image runs as a non-root user"
    );
    assert_eq!(value("ENTRYPOINT"), r#"["herald"]"#);
    assert_eq!(value("CMD"), r#"["serve"]"#);
    assert!(
        value("VOLUME").contains("/var/lib/herald"),
        "data in a volume"
    );
    assert!(value("ENV").contains("HERALD_DATA_DIR=/var/lib/herald"));
    assert!(
        value("ENV").contains("HERALD_LISTEN=0.0.0.0:"),
        "reachable from outside"
    );
    assert!(runtime
        .iter()
        .any(|(k, v)| k == "COPY" && v.starts_with("--from=")));
    assert!(
        steps
            .iter()
            .any(|(k, v)| k == "RUN" && v.contains("cargo build --release --locked")),
        "the release build uses the lock file"
    );
}

#[test]
fn the_licences_cargo_toml_declares_are_at_the_root() {
    let manifest = repo_file("Cargo.toml");
    assert!(manifest.contains(r#"license = "MIT OR Apache-2.0""#));
    assert!(repo_file("LICENSE-MIT").starts_with("MIT License"));
    assert!(repo_file("LICENSE-APACHE").contains("Apache License"));
    assert!(repo_file("LICENSE-APACHE").contains("Version 2.0, January 2004"));
}
