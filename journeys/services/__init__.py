"""Every write of the journey domain. Views, admin, tasks and tests call these."""
