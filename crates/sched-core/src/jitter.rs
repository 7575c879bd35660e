//! PLACEHOLDER: random delays added to fire times.
