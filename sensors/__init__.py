"""The device side of nongyun: a device client and a simulator of a district's stations."""
