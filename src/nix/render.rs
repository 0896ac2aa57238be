//! [`Value`] to Nix text. Compact, one expression; nixfmt gives it its layout.

use super::escape::{attr_name, string_literal};
use super::value::{Expr, ExprKind, Value, ValueError};

/// Renders `value` as a Nix expression.
///
/// Strings and attribute names go through [`crate::nix::escape`]; negative numbers
/// and applications are parenthesized where Nix would misread them (`[ (-1) ]`,
/// `f (g x)`).
///
/// ```
/// use k8sgen::nix::{Value, to_nix};
/// let v = Value::attrs([
///     ("ports", Value::list([Value::from(-1), Value::from(443)])),
///     ("if", Value::from("a\"b")),
/// ]);
/// assert_eq!(to_nix(&v).unwrap(), r#"{ "if" = "a\"b"; ports = [ (-1) 443 ]; }"#);
/// // A set with a single attribute is written as a path.
/// let v = Value::attrs([("a", Value::attrs([("b.c", Value::attrs([("d", Value::from(1))]))]))]);
/// assert_eq!(to_nix(&v).unwrap(), r#"{ a."b.c".d = 1; }"#);
/// ```
///
/// # Errors
/// [`ValueError::NonFiniteFloat`] for NaN or infinity.
pub fn to_nix(value: &Value) -> Result<String, ValueError> {
    let mut out = String::new();
    write_value(value, Position::Top, &mut out)?;
    Ok(out)
}

/// Where a value sits, which decides whether it needs parentheses.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Position {
    /// The whole expression, an attribute value: anything goes.
    Top,
    /// A list element or function argument: only "simple" expressions.
    Operand,
}

fn write_value(value: &Value, pos: Position, out: &mut String) -> Result<(), ValueError> {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) => {
            // `-9223372036854775808` does not lex: its magnitude overflows an int.
            let text = if *i == i64::MIN {
                "-9223372036854775807 - 1".to_owned()
            } else {
                i.to_string()
            };
            write_maybe_negative(
                &text,
                *i < 0 && (pos == Position::Operand || *i == i64::MIN),
                out,
            );
        }
        Value::Float(f) => {
            let text = float_literal(*f)?;
            write_maybe_negative(&text, f.is_sign_negative() && pos == Position::Operand, out);
        }
        Value::Str(s) => out.push_str(&string_literal(s)),
        Value::Path(p) => out.push_str(p.as_str()),
        Value::List(items) => {
            out.push('[');
            for item in items {
                out.push(' ');
                write_value(item, Position::Operand, out)?;
            }
            out.push_str(" ]");
        }
        Value::Attrs(attrs) => {
            out.push('{');
            for (k, v) in attrs {
                out.push(' ');
                out.push_str(&attr_name(k));
                // `a = { b = x; };` reads as `a.b = x;`: a set with one
                // attribute becomes part of the path (the same value in Nix).
                let mut v = v;
                while let Value::Attrs(inner) = v {
                    let mut entries = inner.iter();
                    let (Some((k2, v2)), None) = (entries.next(), entries.next()) else {
                        break;
                    };
                    out.push('.');
                    out.push_str(&attr_name(k2));
                    v = v2;
                }
                out.push_str(" = ");
                write_value(v, Position::Top, out)?;
                out.push(';');
            }
            out.push_str(" }");
        }
        Value::Expr(e) => write_expr(e, pos, out)?,
    }
    Ok(())
}

fn write_maybe_negative(text: &str, parenthesize: bool, out: &mut String) {
    if parenthesize {
        out.push('(');
        out.push_str(text);
        out.push(')');
    } else {
        out.push_str(text);
    }
}

fn write_expr(expr: &Expr, pos: Position, out: &mut String) -> Result<(), ValueError> {
    match expr.kind() {
        ExprKind::Select { root, path } => {
            out.push_str(root.as_str());
            for seg in path {
                out.push('.');
                out.push_str(&attr_name(seg));
            }
        }
        ExprKind::Apply { fun, args } => {
            if pos == Position::Operand {
                out.push('(');
            }
            // Applications are kept flat (`f a b`), so the function is always a
            // selection and never needs parentheses itself.
            write_expr(fun, Position::Operand, out)?;
            for arg in args {
                out.push(' ');
                write_value(arg, Position::Operand, out)?;
            }
            if pos == Position::Operand {
                out.push(')');
            }
        }
    }
    Ok(())
}

/// A float literal Nix's lexer accepts (`1.5`, `0.001`, `1.0e300`, never `1e300`
/// or a bare `3`), without sign (callers add it), that reads back to the same f64.
fn float_literal(f: f64) -> Result<String, ValueError> {
    if !f.is_finite() {
        return Err(ValueError::NonFiniteFloat(f.to_string()));
    }
    let a = f.abs();
    let text = if a != 0.0 && !(1e-5..1e16).contains(&a) {
        // Scientific notation; Nix requires a dot in the mantissa.
        let e = format!("{a:e}");
        match e.split_once('e') {
            Some((m, exp)) if !m.contains('.') => format!("{m}.0e{exp}"),
            _ => e,
        }
    } else {
        // Shortest decimal that reads back exactly, with a dot.
        let d = a.to_string();
        if d.contains('.') { d } else { format!("{d}.0") }
    };
    Ok(if f.is_sign_negative() {
        format!("-{text}")
    } else {
        text
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars() {
        let r = |v: Value| to_nix(&v).unwrap();
        assert_eq!(r(Value::Null), "null");
        assert_eq!(r(Value::from(false)), "false");
        assert_eq!(r(Value::from(-3)), "-3");
        assert_eq!(r(Value::Int(i64::MIN)), "(-9223372036854775807 - 1)");
        assert_eq!(r(Value::from(3.0)), "3.0");
        assert_eq!(r(Value::from(-0.5)), "-0.5");
        assert_eq!(r(Value::from(1e300)), "1.0e300");
        assert_eq!(r(Value::from(1.5e-7)), "1.5e-7");
        assert_eq!(r(Value::from(0.1)), "0.1");
        assert_eq!(r(Value::List(vec![])), "[ ]");
        assert_eq!(r(Value::Attrs(Default::default())), "{ }");
        assert!(to_nix(&Value::from(f64::NAN)).is_err());
        assert!(to_nix(&Value::from(f64::INFINITY)).is_err());
    }

    #[test]
    fn operands_are_parenthesized() {
        let v = Value::list([
            Value::from(-1),
            Value::from(-1.5),
            Value::apply(Expr::var("lib.mkDefault"), Value::from(-2)),
            Value::select("config", ["a"]),
        ]);
        assert_eq!(
            to_nix(&v).unwrap(),
            "[ (-1) (-1.5) (lib.mkDefault (-2)) config.a ]"
        );
        let nested = Value::apply(
            Expr::var("lib.mkForce"),
            Value::apply(Expr::var("lib.mkDefault"), Value::from(1)),
        );
        assert_eq!(to_nix(&nested).unwrap(), "lib.mkForce (lib.mkDefault 1)");
        let two = Value::Expr(
            Expr::var("lib.mkOverride")
                .apply(Value::from(900))
                .apply(Value::from("x")),
        );
        assert_eq!(to_nix(&two).unwrap(), r#"lib.mkOverride 900 "x""#);
    }
}
