//! Scopes a token grants, and what each request needs.

use std::fmt;

/// One grant of a token or certificate subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Everything.
    Admin,
    /// Read the jobs, runs and statistics of one product.
    Read(String),
    /// Read, and create, patch, delete, run, pause, resume and cancel in one product.
    Write(String),
}

impl Scope {
    /// Parses `admin`, `product:<name>:read` or `product:<name>:write`.
    pub fn parse(s: &str) -> Result<Scope, String> {
        if s == "admin" {
            return Ok(Scope::Admin);
        }
        let parts: Vec<&str> = s.split(':').collect();
        match parts.as_slice() {
            ["product", name, "read"] if valid_name(name) => Ok(Scope::Read((*name).to_owned())),
            ["product", name, "write"] if valid_name(name) => Ok(Scope::Write((*name).to_owned())),
            _ => Err(format!("scope `{s}` is not `admin`, `product:<name>:read` or `product:<name>:write`")),
        }
    }
}

fn valid_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 100 && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::Admin => f.write_str("admin"),
            Scope::Read(p) => write!(f, "product:{p}:read"),
            Scope::Write(p) => write!(f, "product:{p}:write"),
        }
    }
}

/// Who made a request, once authenticated.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The token's (or subject's) name; `anonymous` when authentication is off.
    pub name: String,
    /// What it may do.
    pub scopes: Vec<Scope>,
}

impl Caller {
    /// Everything allowed (authentication switched off).
    pub fn anonymous() -> Caller {
        Caller { name: "anonymous".to_owned(), scopes: vec![Scope::Admin] }
    }

    /// Holds `admin`.
    pub fn is_admin(&self) -> bool {
        self.scopes.contains(&Scope::Admin)
    }

    /// May read `product` (write implies read).
    pub fn can_read(&self, product: &str) -> bool {
        self.scopes.iter().any(|s| match s {
            Scope::Admin => true,
            Scope::Read(p) | Scope::Write(p) => p == product,
        })
    }

    /// May change `product`.
    pub fn can_write(&self, product: &str) -> bool {
        self.scopes.iter().any(|s| match s {
            Scope::Admin => true,
            Scope::Write(p) => p == product,
            Scope::Read(_) => false,
        })
    }

    /// Whether this caller has what `need` asks for (`query` is the request's query string).
    pub fn allows(&self, need: &Need, query: &str) -> Result<(), String> {
        let ok = match need {
            Need::Open | Need::Metrics | Need::Authenticated => true,
            Need::Admin => self.is_admin(),
            Need::Read(p) => self.can_read(p),
            Need::Write(p) => self.can_write(p),
            Need::AcrossProducts => {
                if self.is_admin() {
                    true
                } else {
                    let product = product_param(query);
                    return match product {
                        Some(p) if self.can_read(&p) => Ok(()),
                        Some(p) => Err(format!("this route needs product:{p}:read, which `{}` lacks", self.name)),
                        None => Err(format!(
                            "`{}` is scoped to products: add `product=<name>` for a product it can read \
                             (or use an admin token)",
                            self.name
                        )),
                    };
                }
            }
        };
        if ok {
            Ok(())
        } else {
            Err(format!("this request needs {need}, which `{}` lacks", self.name))
        }
    }
}

fn product_param(query: &str) -> Option<String> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).ok()?;
    let mut products = pairs.into_iter().filter(|(k, _)| k == "product").map(|(_, v)| v);
    let first = products.next()?;
    // Two product parameters are refused by the route itself; never authorise on the first.
    products.next().is_none().then_some(first)
}

/// What a request needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Need {
    /// Nothing: health and the API document.
    Open,
    /// `/metrics`: open on loopback, any valid token elsewhere.
    Metrics,
    /// Any valid token.
    Authenticated,
    /// The `admin` scope.
    Admin,
    /// Read access to a product.
    Read(String),
    /// Write access to a product.
    Write(String),
    /// History and statistics across products: admin, or read access to the `product` named
    /// in the query (single runs are checked against their product by the route).
    AcrossProducts,
}

impl fmt::Display for Need {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Need::Open => f.write_str("nothing"),
            Need::Metrics | Need::Authenticated => f.write_str("a valid token"),
            Need::Admin => f.write_str("admin"),
            Need::Read(p) => write!(f, "product:{p}:read"),
            Need::Write(p) => write!(f, "product:{p}:write"),
            Need::AcrossProducts => f.write_str("admin or a product's read scope"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse_and_print() {
        for s in ["admin", "product:vps4:read", "product:vps4:write"] {
            assert_eq!(Scope::parse(s).unwrap().to_string(), s);
        }
        for bad in ["", "root", "product:vps4", "product::read", "product:vps4:delete", "product:a b:read"] {
            assert!(Scope::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn write_implies_read_and_products_are_separate() {
        let c = Caller { name: "ci".into(), scopes: vec![Scope::Write("vps4".into()), Scope::Read("dns".into())] };
        assert!(c.allows(&Need::Read("vps4".into()), "").is_ok());
        assert!(c.allows(&Need::Write("vps4".into()), "").is_ok());
        assert!(c.allows(&Need::Read("dns".into()), "").is_ok());
        assert!(c.allows(&Need::Write("dns".into()), "").is_err());
        assert!(c.allows(&Need::Read("mail".into()), "").is_err());
        assert!(c.allows(&Need::Admin, "").is_err());
        assert!(c.allows(&Need::AcrossProducts, "product=dns&limit=5").is_ok());
        assert!(c.allows(&Need::AcrossProducts, "product=mail").is_err());
        assert!(c.allows(&Need::AcrossProducts, "limit=5").is_err());
        assert!(c.allows(&Need::AcrossProducts, "product=dns&product=mail").is_err());
    }
}
