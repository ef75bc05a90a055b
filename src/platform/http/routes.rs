//! How a domain mounts its routes: `Endpoint::at("/buckets").get(list).post(create)` added
//! to [`Routes`], which mounts the resource and records every (method, path) it serves. The
//! record is what the route/OpenAPI completeness test compares with the OpenAPI document,
//! so a route nobody documented (or a documented route nobody mounted) fails the suite.
//!
//! A GET handler also answers HEAD (RFC 9110 §9.3.2: the same headers, no body; actix-http
//! leaves the body out) unless the endpoint has a HEAD handler of its own.

use actix_web::http::Method;
use actix_web::{FromRequest, Handler, Responder, guard, web};

/// One mounted operation: method and path relative to the domain's `/api/v1/<path>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mounted {
    pub method: Method,
    pub path: String,
}

/// A domain's route table while it is being mounted.
pub struct Routes<'a> {
    cfg: &'a mut web::ServiceConfig,
    mounted: Vec<Mounted>,
}

impl<'a> Routes<'a> {
    pub fn new(cfg: &'a mut web::ServiceConfig) -> Self {
        Self {
            cfg,
            mounted: Vec::new(),
        }
    }

    /// The underlying config, for `app_data` (a domain's state) and extractor configs.
    pub fn config(&mut self) -> &mut web::ServiceConfig {
        self.cfg
    }

    /// Mounts one resource with its methods.
    pub fn add(&mut self, endpoint: Endpoint) -> &mut Self {
        let own_head = endpoint.routes.iter().any(|(m, _)| m == Method::HEAD);
        let mut resource = web::resource(endpoint.path.as_str());
        if let Some(words) = endpoint.not_last {
            resource = resource.guard(guard::fn_guard(move |ctx| {
                !last_segment_is_one_of(&ctx.head().uri, words)
            }));
        }
        for (method, route) in endpoint.routes {
            resource = resource.route(if method == Method::GET && !own_head {
                route.guard(guard::Any(guard::Get()).or(guard::Head()))
            } else {
                route.method(method.clone())
            });
            self.mounted.push(Mounted {
                method,
                path: endpoint.path.clone(),
            });
        }
        self.cfg.service(resource);
        self
    }

    /// What has been mounted so far.
    pub fn mounted(self) -> Vec<Mounted> {
        self.mounted
    }
}

/// One path and the handler of each method it answers.
pub struct Endpoint {
    path: String,
    /// Each method's route, its guard added when the resource is built (`Routes::add`),
    /// once it is known whether a HEAD handler of its own takes HEAD from GET.
    routes: Vec<(Method, actix_web::Route)>,
    /// Last path segments this endpoint leaves to the routes mounted after it.
    not_last: Option<&'static [&'static str]>,
}

macro_rules! methods {
    ($($name:ident => $method:ident),* $(,)?) => {
        $(
            pub fn $name<F, Args>(self, handler: F) -> Self
            where
                F: Handler<Args>,
                Args: FromRequest + 'static,
                F::Output: Responder + 'static,
            {
                self.on(Method::$method, handler)
            }
        )*
    };
}

impl Endpoint {
    pub fn at(path: &str) -> Self {
        Self {
            path: path.to_owned(),
            routes: Vec::new(),
            not_last: None,
        }
    }

    /// Leaves paths whose last segment is one of `words` to the routes mounted after this
    /// one, so a hot `{id}` route can be mounted before its literal siblings (`.../query`).
    /// The router tries a domain's routes in order, one regex each: a document read was the
    /// fifth in its scope. A wrong method on any other id is still this endpoint's 405.
    pub fn unless_last_segment_is(mut self, words: &'static [&'static str]) -> Self {
        self.not_last = Some(words);
        self
    }

    /// The handler of `method` (for methods without a shorthand, such as OPTIONS).
    pub fn on<F, Args>(mut self, method: Method, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.routes.push((method, web::route().to(handler)));
        self
    }

    methods! {
        get => GET,
        post => POST,
        put => PUT,
        patch => PATCH,
        delete => DELETE,
        head => HEAD,
    }
}

/// Whether the path's last segment, as the router reads it (percent-decoded where actix
/// decodes), is one of `words`.
fn last_segment_is_one_of(uri: &actix_web::http::Uri, words: &[&str]) -> bool {
    let last = uri.path().rsplit('/').next().unwrap_or_default();
    if !last.contains('%') {
        return words.contains(&last);
    }
    let url = actix_web::dev::Url::new(uri.clone());
    let last = url.path().rsplit('/').next().unwrap_or_default();
    words.contains(&last)
}

/// Path templates compared by shape: `{bucket}` and `{id}` are the same parameter slot.
pub fn template_shape(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut depth = 0;
    for c in path.chars() {
        match c {
            '{' => {
                if depth == 0 {
                    out.push_str("{}");
                }
                depth += 1;
            }
            '}' => depth -= 1,
            _ if depth > 0 => {}
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::template_shape;

    #[test]
    fn parameter_names_do_not_matter() {
        assert_eq!(
            template_shape("/files/{file}/versions/{n}"),
            "/files/{}/versions/{}"
        );
        assert_eq!(
            template_shape("/files/{id}/versions/{number}"),
            "/files/{}/versions/{}"
        );
    }
}
