//! The integration suite: starts real servers on port 0 and drives them over HTTP like a user,
//! with a real receiver. Every scenario runs on the embedded store and, when
//! TIDINGS_TEST_DATABASE_URL is set, on PostgreSQL (a fresh schema per test).

mod harness;
mod receiver;

mod abuse;
mod api_errors;
mod at_rest;
mod catalog;
mod console;
mod delivery;
mod engine;
mod faults;
mod hostile;
mod limits;
mod oauth;
mod openapi;
mod operator;
mod options;
mod schemathesis;
mod sdk;
mod tenancy;
mod webhooks;
