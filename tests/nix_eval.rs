//! Real Nix as the judge: any string emitted as a Nix string or attribute name, and
//! any rendered value, evaluates back to itself with
//! `nix-instantiate --eval --strict --json`. Cases are generated with proptest's
//! deterministic runner and batched into one evaluation per test (one
//! nix-instantiate start instead of thousands).
//!
//! Needs `nix-instantiate` (Debian: `apt-get install nix-bin`). Without it the
//! tests fail when `CI` is set and are skipped with a loud warning otherwise.

use std::collections::{BTreeMap, BTreeSet};

use std::io::Write;
use std::process::Command;

use k8sgen::nix::escape::string_literal;
use k8sgen::nix::{Expr, Templates, Value, format_nix, to_nix};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;

const STRING_CASES: usize = 3000;
const VALUE_CASES: usize = 300;

/// Whether nix-instantiate can run; panics in CI when it cannot.
fn nix_available(test: &str) -> bool {
    let ok = Command::new("nix-instantiate")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "{test}: CI is set but nix-instantiate is missing; install Debian's nix-bin"
        );
        // Straight to stderr: the test harness captures `eprintln!`, and this must
        // be seen in a normal `cargo test` run.
        let _ = writeln!(
            std::io::stderr(),
            "\n{bar}\nWARNING: {test} SKIPPED: nix-instantiate not found.\n\
             Escaping is NOT checked against real Nix. Install it: apt-get install -y nix-bin\n{bar}\n",
            bar = "!".repeat(78)
        );
    }
    ok
}

/// Evaluates the Nix file `source` once, strictly, to JSON.
fn eval_json(source: &str) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cases.nix");
    std::fs::write(&file, source).unwrap();
    let out = Command::new("nix-instantiate")
        .args(["--readonly-mode", "--eval", "--strict", "--json"])
        .arg(&file)
        .output()
        .expect("run nix-instantiate");
    assert!(
        out.status.success(),
        "nix-instantiate failed:\n{}\n(the file is kept at {})",
        String::from_utf8_lossy(&out.stderr),
        dir.keep().join("cases.nix").display()
    );
    serde_json::from_slice(&out.stdout).expect("nix-instantiate printed JSON")
}

/// Pieces that are special somewhere in Nix's lexers, plus arbitrary characters.
fn piece() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(vec![
            "\"", "\\", "${", "$${", "$", "$$", "'", "''", "'''", "''$", "''\\", "''${",
            "\n", "\t", "\r", "\r\n", " ", "  ", "{", "}", "#", "/*", "*/", ";", "=", "\\n",
            "\\${", "\u{a0}", "\u{2028}", "\u{feff}", "é", "日本", "🦀", "\u{7f}", "\u{1}",
        ])
        .prop_map(String::from),
        2 => "[a-zA-Z0-9_.-]{1,5}",
        1 => any::<char>().prop_filter("Nix strings cannot hold NUL", |c| *c != '\0').prop_map(String::from),
    ]
}

fn any_string() -> impl Strategy<Value = String> {
    prop::collection::vec(piece(), 0..10).prop_map(|v| v.concat())
}

/// Multi-line texts shaped to take the `''…''` path often: lines without
/// surrounding blanks, some indented, a final newline.
fn multi_line_string() -> impl Strategy<Value = String> {
    let line = (
        prop::sample::select(vec!["", "", "  ", "    ", "\t"]),
        prop::collection::vec(
            piece().prop_filter("one line", |p| {
                !p.contains(['\n', '\r'])
                    && !p.starts_with([' ', '\t'])
                    && !p.ends_with([' ', '\t'])
            }),
            0..6,
        ),
    )
        .prop_map(|(indent, parts)| {
            let body = parts.concat();
            if body.trim().is_empty() {
                String::new()
            } else {
                format!("{indent}{body}")
            }
        });
    prop::collection::vec(line, 2..6).prop_map(|lines| {
        let mut s = lines.join("\n");
        s.push('\n');
        s
    })
}

fn sample<T: std::fmt::Debug>(
    strategy: impl Strategy<Value = T>,
    n: usize,
    runner: &mut TestRunner,
) -> Vec<T> {
    (0..n)
        .map(|_| strategy.new_tree(runner).unwrap().current())
        .collect()
}

const EDGE_CASES: &[&str] = &[
    "",
    " ",
    "\n",
    "\n\n",
    "a\n",
    " a \n",
    "\ta\n\tb\n",
    "'",
    "''",
    "'''",
    "''''",
    "'$",
    "'${x}",
    "''${x}",
    "$",
    "$$",
    "${",
    "$${",
    "$$${",
    "\\",
    "\\\\",
    "\\${",
    "\"",
    "${a}\n${b}\n",
    "a'\nb''\nc'''\n",
    "x'$y\nz\n",
    "a\r\nb\r\n",
    "\r",
    "a\n  b\n    c\n",
    "  a\n  b\n",
    "a\n\n\nb\n",
    "if",
    "let",
    "or",
    "inherit",
    "__curPos",
    "true",
    "null",
    "a-b",
    "a'",
    "_",
    "0",
    "-1",
    "a.b",
    "a b",
    "🦀",
    "end with $",
    "end with '\nx\n",
];

#[test]
fn any_string_round_trips_through_nix() {
    if !nix_available("any_string_round_trips_through_nix") {
        return;
    }
    let mut runner = TestRunner::deterministic();
    let mut strings: Vec<String> = EDGE_CASES.iter().map(|s| (*s).to_owned()).collect();
    strings.extend(sample(any_string(), STRING_CASES / 2, &mut runner));
    strings.extend(sample(multi_line_string(), STRING_CASES / 2, &mut runner));
    let indented = strings
        .iter()
        .filter(|s| string_literal(s).starts_with("''"))
        .count();
    let names: BTreeSet<String> = strings.iter().cloned().collect();

    // Three ways a string reaches a file: Value rendering, the same through nixfmt,
    // and the template engine's escape function and `{{attr}}` helper.
    let list = Value::list(strings.iter().map(String::as_str));
    let attrs = Value::attrs(names.iter().map(|n| (n.as_str(), Value::Null)));
    let raw_list = to_nix(&list).unwrap();
    let raw_attrs = to_nix(&attrs).unwrap();
    let fmt_list = format_nix("strings", &raw_list).unwrap();
    let fmt_attrs = format_nix("names", &raw_attrs).unwrap();
    let templates = Templates::from_sources(&[
        ("list", "[\n{{#each xs}}\n  {{this}}\n{{/each}}\n]\n"),
        (
            "attrs",
            "{\n{{#each xs}}\n  {{attr this}} = null;\n{{/each}}\n}\n",
        ),
    ])
    .unwrap();
    let ctx = serde_json::json!({ "xs": strings });
    let names_ctx = serde_json::json!({ "xs": names });
    let tpl_list = format_nix("list", &templates.render("list", &ctx).unwrap()).unwrap();
    let tpl_attrs = format_nix("attrs", &templates.render("attrs", &names_ctx).unwrap()).unwrap();

    let source = format!(
        "{{\n  raw = {raw_list};\n  formatted = (\n{fmt_list});\n  templated = (\n{tpl_list});\n  \
         rawNames = builtins.attrNames {raw_attrs};\n  \
         formattedNames = builtins.attrNames (\n{fmt_attrs});\n  \
         templatedNames = builtins.attrNames (\n{tpl_attrs});\n}}\n"
    );
    let got = eval_json(&source);

    let expected_names: Vec<&String> = names.iter().collect();
    let mut failures = Vec::new();
    for key in ["raw", "formatted", "templated"] {
        let got_list = got[key]
            .as_array()
            .unwrap_or_else(|| panic!("{key}: not a list"));
        assert_eq!(got_list.len(), strings.len(), "{key}");
        for (s, g) in strings.iter().zip(got_list) {
            if g.as_str() != Some(s.as_str()) {
                failures.push(format!(
                    "{key}: {s:?} rendered {} evaluated to {g}",
                    string_literal(s)
                ));
            }
        }
    }
    for key in ["rawNames", "formattedNames", "templatedNames"] {
        let got_names: Vec<&str> = got[key]
            .as_array()
            .unwrap_or_else(|| panic!("{key}: not a list"))
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        if got_names
            != expected_names
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
        {
            let got_set: BTreeSet<&str> = got_names.iter().copied().collect();
            for n in &names {
                if !got_set.contains(n.as_str()) {
                    failures.push(format!("{key}: name {n:?} missing"));
                }
            }
            failures.push(format!("{key}: names differ"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    eprintln!(
        "checked {} strings ({indented} as indented strings) and {} attribute names, \
         each three ways, in one nix-instantiate run",
        strings.len(),
        names.len()
    );
}

fn attr_name() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[a-z][a-z0-9-]{0,6}",
        1 => prop::sample::select(vec!["if", "or", "let", "a b", "${x}", "\"", "", "0", "app.kubernetes.io/name"]).prop_map(String::from),
        1 => any_string(),
    ]
}

/// Values of every kind, nested, each with the JSON it must evaluate to under
/// [`STUBS`].
fn any_value() -> impl Strategy<Value = (Value, serde_json::Value)> {
    use serde_json::json;
    let float = prop_oneof![
        3 => ((-999_999i64..=999_999), (-12i32..=12)).prop_map(|(m, e)| m as f64 * 10f64.powi(e)),
        1 => prop::sample::select(vec![0.0, 1e300, -2.5e-300, 1e16, 1e-5, 9.99999e15, 0.1, -0.5]),
    ];
    let leaf = prop_oneof![
        Just((Value::Null, json!(null))),
        any::<bool>().prop_map(|b| (Value::Bool(b), json!(b))),
        any::<i64>().prop_map(|i| (Value::Int(i), json!(i))),
        prop::sample::select(vec![i64::MIN, i64::MAX, 0, -1, 1])
            .prop_map(|i| (Value::Int(i), json!(i))),
        float.prop_map(|f| (Value::Float(f), json!(f))),
        any_string().prop_map(|s| (Value::from(s.as_str()), json!(s))),
        multi_line_string().prop_map(|s| (Value::from(s.as_str()), json!(s))),
        Just((Value::select("cfg", ["a b", "c"]), json!(42))),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(|items| {
                let (vs, js): (Vec<_>, Vec<_>) = items.into_iter().unzip();
                (Value::List(vs), serde_json::Value::Array(js))
            }),
            prop::collection::btree_map(attr_name(), inner.clone(), 0..6).prop_map(|m| {
                let js = m.iter().map(|(k, (_, j))| (k.clone(), j.clone())).collect();
                let vs = m.into_iter().map(|(k, (v, _))| (k, v)).collect();
                (Value::Attrs(vs), serde_json::Value::Object(js))
            }),
            inner
                .clone()
                .prop_map(|(v, j)| (Value::apply(Expr::var("lib.mkDefault"), v), j)),
            (inner.clone(), inner).prop_map(|((a, ja), (b, jb))| {
                (
                    Value::Expr(Expr::var("lib.pair").apply(a).apply(b)),
                    json!([ja, jb]),
                )
            }),
        ]
    })
}

/// Stand-ins for the names generated expressions use.
const STUBS: &str =
    "lib = { mkDefault = x: x; pair = a: b: [ a b ]; }; cfg = { \"a b\" = { c = 42; }; };";

/// JSON equality where numbers compare as f64 with a relative tolerance: Nix prints
/// floats with 6 significant digits (`%g`), so `3.0` comes back as `3`.
fn json_close(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value as J;
    match (a, b) {
        (J::Number(x), J::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(x), Some(y)) => x == y,
            _ => {
                let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
                x == y || (x - y).abs() <= 1e-5 * x.abs().max(y.abs())
            }
        },
        (J::Array(x), J::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| json_close(x, y))
        }
        (J::Object(x), J::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_close(v, w)))
        }
        _ => a == b,
    }
}

#[test]
fn any_value_round_trips_through_nix() {
    if !nix_available("any_value_round_trips_through_nix") {
        return;
    }
    let mut runner = TestRunner::deterministic();
    let (mut values, mut expected): (Vec<Value>, Vec<serde_json::Value>) =
        sample(any_value(), VALUE_CASES, &mut runner)
            .into_iter()
            .unzip();
    // One hand-written value with every kind, nested.
    values.push(Value::attrs([
        ("null", Value::Null),
        ("t", Value::from(true)),
        ("f", Value::from(false)),
        (
            "ints",
            Value::list([0i64, -1, 1, i64::MIN, i64::MAX].map(Value::from)),
        ),
        (
            "floats",
            Value::list([0.5, -0.25, 1.0, 1e300, -1.5e-7, 123456.0].map(Value::from)),
        ),
        (
            "nested",
            Value::attrs([(
                "l",
                Value::list([
                    Value::list(Vec::<Value>::new()),
                    Value::attrs(BTreeMap::<String, Value>::new()),
                ]),
            )]),
        ),
        (
            "expr",
            Value::apply(Expr::var("lib.mkDefault"), Value::from(-3)),
        ),
    ]));
    expected.push(serde_json::json!({
        "null": null, "t": true, "f": false,
        "ints": [0, -1, 1, i64::MIN, i64::MAX],
        "floats": [0.5, -0.25, 1.0, 1e300, -1.5e-7, 123456.0],
        "nested": {"l": [[], {}]},
        "expr": -3,
    }));
    assert_eq!(values.len(), expected.len());
    let rendered: Vec<String> = values.iter().map(|v| to_nix(v).unwrap()).collect();
    let formatted: Vec<String> = rendered
        .iter()
        .map(|r| format_nix("value", r).unwrap())
        .collect();
    let source = format!(
        "let {STUBS} in {{\n  raw = [\n{}\n  ];\n  formatted = [\n{}\n  ];\n}}\n",
        rendered
            .iter()
            .map(|r| format!("({r})"))
            .collect::<Vec<_>>()
            .join("\n"),
        formatted
            .iter()
            .map(|r| format!("(\n{r})"))
            .collect::<Vec<_>>()
            .join("\n"),
    );
    let got = eval_json(&source);
    let mut failures = Vec::new();
    for key in ["raw", "formatted"] {
        let got_list = got[key].as_array().unwrap();
        assert_eq!(got_list.len(), values.len());
        for ((want, r), g) in expected.iter().zip(&rendered).zip(got_list) {
            if !json_close(want, g) {
                failures.push(format!("{key}: {r}\n  expected {want}\n  got      {g}"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    eprintln!(
        "checked {} values, raw and formatted, in one nix-instantiate run",
        values.len()
    );
}
