//! Id newtypes: a `ProductId` is not an `OrderId`, and both are usable as
//! `web::Path<ProductId>` (a malformed id fails the path extractor, which the kernel turns
//! into a 404 problem, as for any id that names nothing), as sqlx binds and as OpenAPI uuids.

/// Declares `pub struct $name(pub Uuid)` with everything an id needs.
///
/// ```ignore
/// crate::id_type!(/// A product.
///     ProductId);
/// ```
#[macro_export]
macro_rules! id_type {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord,
            serde::Serialize, serde::Deserialize, sqlx::Type, utoipa::ToSchema,
        )]
        #[serde(transparent)]
        #[sqlx(transparent)]
        #[schema(value_type = String, format = Uuid)]
        pub struct $name(pub uuid::Uuid);

        impl $name {
            /// A new time-ordered (v7) id.
            pub fn new() -> Self {
                Self(uuid::Uuid::now_v7())
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }

        impl std::str::FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                uuid::Uuid::parse_str(s).map(Self)
            }
        }

        impl From<uuid::Uuid> for $name {
            fn from(id: uuid::Uuid) -> Self {
                Self(id)
            }
        }

        impl From<$name> for uuid::Uuid {
            fn from(id: $name) -> Self {
                id.0
            }
        }
    };
}

#[cfg(test)]
mod tests {
    crate::id_type!(
        /// An id for the test.
        ThingId
    );

    #[test]
    fn ids_round_trip_as_plain_uuid_strings() {
        let id = ThingId::new();
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{}\"", id.0));
        assert_eq!(serde_json::from_str::<ThingId>(&json).unwrap(), id);
        assert!(serde_json::from_str::<ThingId>("\"not-a-uuid\"").is_err());
        assert_eq!(id.to_string().parse::<ThingId>().unwrap(), id);
    }
}
