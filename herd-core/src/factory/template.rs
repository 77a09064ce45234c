//! `{{.Port}}` and `{{.WorkerId}}` placeholders in arguments and environment
//! values (the Go reference's template syntax, so configs carry over).

/// Values substituted into a worker's arguments and environment.
pub(crate) struct TemplateValues<'a> {
    pub port: u16,
    pub worker_id: &'a str,
}

/// Replaces every known placeholder; unknown `{{...}}` text is left as is.
pub(crate) fn render(input: &str, values: &TemplateValues<'_>) -> String {
    if !input.contains("{{") {
        return input.to_string();
    }
    input.replace("{{.Port}}", &values.port.to_string()).replace("{{.WorkerId}}", values.worker_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_port_and_worker_id() {
        let v = TemplateValues { port: 4242, worker_id: "w7" };
        assert_eq!(render("--port={{.Port}}", &v), "--port=4242");
        assert_eq!(render("127.0.0.1:{{.Port}}/{{.WorkerId}}", &v), "127.0.0.1:4242/w7");
        assert_eq!(render("{{.Other}} plain", &v), "{{.Other}} plain");
    }
}
