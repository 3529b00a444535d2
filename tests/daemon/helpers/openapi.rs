//! HTTP answers against `docs/openapi.json`: [`assert_matches_openapi`] finds the response
//! that the document gives for a path and status, and validates a JSON body against its
//! schema, with the document's `#/components/...` references and the schema files under
//! `docs/schemas` that it refers to.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use jsonschema::{Draft, Registry};
use serde_json::{Value, json};

/// Where the documents' `$id`s point: `https://iocd.example/` is the repository's `docs/`.
const BASE: &str = "https://iocd.example/";

struct OpenApi {
    doc: Value,
    registry: Registry<'static>,
}

fn docs() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("docs")
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

fn schema_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            schema_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "json") {
            out.push(path);
        }
    }
}

fn openapi() -> &'static OpenApi {
    static OPENAPI: OnceLock<OpenApi> = OnceLock::new();
    OPENAPI.get_or_init(|| {
        let doc = read_json(&docs().join("openapi.json"));
        let mut files = Vec::new();
        schema_files(&docs().join("schemas"), &mut files);
        let resources = files.iter().map(|path| {
            let rel = path
                .strip_prefix(docs())
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            (format!("{BASE}{rel}"), read_json(path))
        });
        let registry = Registry::new()
            .draft(Draft::Draft202012)
            .extend(resources.chain([(format!("{BASE}openapi.json"), doc.clone())]))
            .unwrap()
            .prepare()
            .unwrap();
        OpenApi { doc, registry }
    })
}

/// A JSON Pointer token (RFC 6901).
fn escape(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// Panics, listing every problem, unless `body` is what `docs/openapi.json` says
/// `GET {path}` answers with `status`: the path (query string ignored) and status must be
/// documented (an exact status, then `4XX`-style ranges, then `default`), and a JSON body
/// must validate against the response's `application/json` schema. A response documented
/// with another content type only has its path and status checked.
pub fn assert_matches_openapi(path: &str, status: u16, body: &str) {
    assert_operation_answer("get", path, status, body);
}

/// [`assert_matches_openapi`] for the operation `method` (lower case: `get`, `post`).
pub fn assert_operation_answer(method: &str, path: &str, status: u16, body: &str) {
    let op = method.to_uppercase();
    let api = openapi();
    let path = path.split('?').next().unwrap_or(path);
    // A templated path (`/api/v1/agencies/{code}`) matches any value of its parameters.
    let path = api.doc["paths"]
        .as_object()
        .and_then(|paths| {
            paths.keys().find(|template| {
                let (t, p): (Vec<&str>, Vec<&str>) =
                    (template.split('/').collect(), path.split('/').collect());
                t.len() == p.len()
                    && t.iter()
                        .zip(&p)
                        .all(|(t, p)| t == p || (t.starts_with('{') && t.ends_with('}')))
            })
        })
        .map_or(path, String::as_str);
    let Some(operation) = api.doc["paths"][path].get(method) else {
        panic!("docs/openapi.json documents no `{op} {path}`");
    };
    let responses = &operation["responses"];
    let range = format!("{}XX", status / 100);
    let Some(key) = [status.to_string(), range, "default".to_owned()]
        .into_iter()
        .find(|k| responses.get(k).is_some())
    else {
        panic!("docs/openapi.json documents no {status} answer to `{op} {path}`; body: {body}");
    };
    // Where the response object is, as a pointer into the document; follow `$ref`s.
    let mut pointer = format!("/paths/{}/{method}/responses/{key}", escape(path));
    loop {
        let response = api.doc.pointer(&pointer).unwrap();
        match response.get("$ref").and_then(Value::as_str) {
            Some(target) => {
                pointer = target
                    .strip_prefix('#')
                    .unwrap_or_else(|| {
                        panic!("{pointer}: only local response `$ref`s are followed")
                    })
                    .to_owned();
            }
            None => break,
        }
    }
    let response = api.doc.pointer(&pointer).unwrap();
    if response["content"].get("application/json").is_none() {
        return;
    }
    let instance: Value = serde_json::from_str(body).unwrap_or_else(|e| {
        panic!("`{op} {path}` answered {status} with a body that is not JSON ({e}): {body}")
    });
    // A URI fragment: the braces of a templated path are percent-encoded.
    let fragment = pointer.replace('{', "%7B").replace('}', "%7D");
    let uri = format!(
        "{BASE}openapi.json#{fragment}/content/{}/schema",
        escape("application/json")
    );
    let validator = jsonschema::options()
        .with_draft(Draft::Draft202012)
        .with_registry(&api.registry)
        .should_validate_formats(true)
        .build(&json!({ "$ref": uri }))
        .unwrap_or_else(|e| panic!("the schema at {uri} does not compile: {e}"));
    let problems: Vec<String> = validator
        .iter_errors(&instance)
        .map(|e| format!("  at `{}`: {e}", e.instance_path()))
        .collect();
    assert!(
        problems.is_empty(),
        "`{op} {path}` answered {status} with a body that does not match docs/openapi.json \
         ({uri}):\n{}\nbody: {body}",
        problems.join("\n")
    );
}
