"""Training loop pieces shared by every recipe: schedules, model averaging, the epoch loop."""
