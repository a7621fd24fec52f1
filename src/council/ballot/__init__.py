"""How answers become one: pure functions over completions, no I/O."""
