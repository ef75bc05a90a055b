//! Events that other domains consume, declared once by their publisher and compiled into
//! every build, so a consumer decodes them into the publisher's own structs even when the
//! publisher is not compiled in (events may come from another Basalt instance, through the
//! shared database or Kafka). Events only their own domain consumes stay in that domain's
//! `events.rs`.

pub mod auth;
pub mod cart;
pub mod catalog;
pub mod orders;
