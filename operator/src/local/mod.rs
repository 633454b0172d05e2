//! Local mode (`rivulet up`): everything on one machine.

mod embedded;
pub mod runtimes;
