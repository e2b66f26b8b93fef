"""Every write of the personalization domain."""
