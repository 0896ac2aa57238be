//! The control plane's size.

use super::Ctx;
use crate::diag::{Diagnostic, codes};

/// etcd needs a majority: an even member count (or none) is an error.
pub fn replicas(cx: &Ctx, out: &mut Vec<Diagnostic>) {
    let n = cx.spec.control_plane.replicas;
    if n % 2 == 1 {
        return;
    }
    let why = if n == 0 {
        "no control-plane node means no cluster".to_string()
    } else {
        format!("{n} etcd members tolerate no more failures than {}", n - 1)
    };
    out.push(
        Diagnostic::new(
            &codes::CONTROL_PLANE_REPLICAS,
            format!("the control plane needs an odd number of replicas, not {n}"),
        )
        .label(cx.span(&["control_plane", "replicas"]), why)
        .help(if n == 0 {
            "use 1 for development, 3 for production".to_string()
        } else {
            format!("use {} or {}", n - 1, n + 1)
        }),
    );
}

/// One control-plane node works but is not highly available.
pub fn no_ha(cx: &Ctx, out: &mut Vec<Diagnostic>) {
    if cx.spec.control_plane.replicas == 1 {
        out.push(
            Diagnostic::new(
                &codes::CONTROL_PLANE_NO_HA,
                "a single control-plane node: the API and etcd go down with it",
            )
            .label(
                cx.span(&["control_plane", "replicas"]),
                "one node, no high availability",
            )
            .help("fine for development; use 3 replicas for production"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::run;
    use crate::diag::codes;

    const ONE: &str = "[control_plane]\nreplicas = 1";

    #[test]
    fn even_or_zero_is_an_error() {
        for n in ["0", "2", "4"] {
            let r = run(&[(ONE, &format!("[control_plane]\nreplicas = {n}"))]);
            assert_eq!(r.at(&codes::CONTROL_PLANE_REPLICAS), [n]);
            assert!(!r.fires(&codes::CONTROL_PLANE_NO_HA));
        }
        let r = run(&[(ONE, "[control_plane]\nreplicas = 3")]);
        assert!(r.diags.is_empty(), "{:#?}", r.diags);
    }

    #[test]
    fn one_is_a_warning() {
        let r = run(&[]);
        assert_eq!(r.at(&codes::CONTROL_PLANE_NO_HA), ["1"]);
        assert!(!r.fires(&codes::CONTROL_PLANE_REPLICAS));
    }
}
