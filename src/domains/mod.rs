//! The one place that names domain features. Each line registers a domain: its Cargo
//! feature, its module and the value implementing `platform::Domain`. Nothing else in the
//! code base needs `#[cfg(feature = ...)]` for a whole domain.

use std::sync::Arc;

use crate::platform::Domain;

// Cargo enables a domain's declared dependencies on its own; these catch builds that bypass
// Cargo's feature resolution (e.g. `--cfg 'feature="orders"'`) with a message that says why.
#[cfg(all(feature = "cart", not(feature = "catalog")))]
compile_error!("feature `cart` needs `catalog`: carts hold catalog variants");
#[cfg(all(feature = "orders", not(all(feature = "cart", feature = "catalog"))))]
compile_error!("feature `orders` needs `cart` and `catalog`: orders are placed from carts");
#[cfg(all(feature = "vendors", not(all(feature = "catalog", feature = "orders"))))]
compile_error!(
    "feature `vendors` needs `catalog` and `orders`: vendors own products and fulfil orders"
);

macro_rules! domains {
    ($($feature:literal => $module:ident :: $value:ident),* $(,)?) => {
        $(
            #[cfg(feature = $feature)]
            pub mod $module;
        )*

        /// Every Basalt domain's name, compiled in or not (for /api/v1/capabilities).
        pub const ALL: &[&str] = &[$($feature),*];

        /// The domains compiled into this binary.
        // One push per feature, because `cfg` cannot sit on `vec![]` elements.
        #[allow(clippy::vec_init_then_push)]
        pub fn compiled() -> Vec<Arc<dyn Domain>> {
            #[allow(unused_mut)]
            let mut domains: Vec<Arc<dyn Domain>> = Vec::new();
            $(
                #[cfg(feature = $feature)]
                domains.push(Arc::new(<$module::$value>::default()));
            )*
            domains
        }
    };
}

domains! {
    "auth" => auth::Auth,
    "baas-database" => baas_database::BaasDatabase,
    "storage" => storage::Storage,
    "catalog" => catalog::Catalog,
    "cart" => cart::Cart,
    "orders" => orders::Orders,
    "users" => users::Users,
    "vendors" => vendors::Vendors,
    "content" => content::Content,
    "admin" => admin::Admin,
    "notifications" => notifications::Notifications,
}
