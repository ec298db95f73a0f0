//! The server's module layering, enforced: no module imports one above it.
//!
//! The request path runs `lib.rs` (app assembly) → `routes` (HTTP: extract, call, respond) →
//! `usecases` (one module per operation, owning its transaction) → `domain` (pure rules) and
//! `store` (persistence only). The table below gives every top-level module of `src/` a
//! layer; a module may name (`crate::…`) modules of its own layer or below, never above. So
//! `routes` is imported only by the app assembly, and `store` never reaches for the rules of a
//! use case.
//!
//! The scan reads the non-comment code of every `src/**/*.rs` file up to its `#[cfg(test)]`
//! module (tests may use anything).

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Top-level modules by layer, lowest first.
const LAYERS: &[(&str, &[&str])] = &[
    ("pure rules", &["domain"]),
    // `config` holds the validated settings (the `--deprecate` rules among them) and names the
    // store backend of a URL; the store reads the configured defaults. `inplace` (tower
    // plumbing for the app's middleware) names nothing of the crate; it sits here so that
    // `deprecate` can run as one.
    (
        "settings and persistence",
        &["config", "deprecate", "inplace", "seal", "store"],
    ),
    (
        "infrastructure",
        &[
            "error",
            "ssrf",
            "tls",
            "tokens",
            "connections",
            "observe",
            "limits",
            "extract",
            "state",
        ],
    ),
    // `admin`: the console's and the CLI's actions (apps, webhooks, lead sources, accounts),
    // each an audited use case.
    ("operations", &["usecases", "channels", "dispatch", "admin"]),
    ("http", &["routes", "console"]),
    ("app assembly", &["lib", "server", "cli", "testing", "main"]),
];

/// Items of the crate root and the module that owns them.
const ROOT_ITEMS: &[(&str, &str)] = &[
    ("AppState", "state"),
    ("Server", "server"),
    ("StartError", "server"),
    ("serve", "server"),
    ("app", "lib"),
    ("app_with", "lib"),
    ("metrics_app", "lib"),
    ("ExtraRoutes", "lib"),
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS
        .iter()
        .position(|(_, modules)| modules.contains(&module))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file belongs to: `src/routes/oauth/mod.rs` → `routes`.
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap();
    let first = rel
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy();
    first.trim_end_matches(".rs").to_owned()
}

/// The code of `text` without comments and without the trailing test module.
fn code(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod ") {
        Some(i) => &text[..i],
        None => text,
    };
    text.lines()
        .map(|line| match line.find("//") {
            Some(i) => &line[..i],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The top-level modules `code` names through `crate::`, including `crate::{a, b::c}` groups.
fn crate_imports(code: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let ident = |s: &str| -> String {
        s.trim_start()
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        // `l2c_crate::…` or `my_crate::…` are other paths.
        let before = rest[..i].chars().next_back();
        rest = &rest[i + "crate::".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 0;
            let mut start = 0;
            for (j, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => {
                        out.insert(ident(&group[start..j]));
                        break;
                    }
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        out.insert(ident(&group[start..j]));
                        start = j + 1;
                    }
                    _ => {}
                }
            }
        } else {
            out.insert(ident(rest));
        }
    }
    out.retain(|m| !m.is_empty() && m != "self");
    out
}

#[test]
fn no_module_imports_one_above_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut violations = Vec::new();
    let mut unknown = BTreeSet::new();
    for file in &files {
        let module = module_of(&src, file);
        let Some(own) = layer_of(&module) else {
            unknown.insert(module);
            continue;
        };
        let text = std::fs::read_to_string(file).unwrap();
        for target in crate_imports(&code(&text)) {
            if target == module {
                continue;
            }
            let owner = ROOT_ITEMS
                .iter()
                .find(|(item, _)| *item == target)
                .map_or(target.as_str(), |(_, owner)| owner);
            match layer_of(owner) {
                None => {
                    unknown.insert(target);
                }
                Some(layer) if layer > own => violations.push(format!(
                    "{}: `{module}` ({}) imports `{target}` ({})",
                    file.strip_prefix(&src).unwrap().display(),
                    LAYERS[own].0,
                    LAYERS[layer].0,
                )),
                Some(_) => {}
            }
        }
    }
    assert!(
        unknown.is_empty(),
        "modules missing from the LAYERS table: {unknown:?}"
    );
    assert!(
        violations.is_empty(),
        "upward imports:\n{}",
        violations.join("\n")
    );
}

#[test]
fn the_scan_sees_imports() {
    let found = crate_imports(&code(
        "use crate::store::Db;\nuse crate::{routes::x, error::{A, B}, self};\n\
         // use crate::dispatch;\nlet a = crate::limits::f();\nuse l2c_crate::zz;\n\
         #[cfg(test)]\nmod tests { use crate::testing; }",
    ));
    let want: BTreeSet<String> = ["store", "routes", "error", "limits"]
        .map(String::from)
        .into();
    assert_eq!(found, want);
}
