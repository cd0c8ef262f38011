#![allow(dead_code)]

pub mod browser;
