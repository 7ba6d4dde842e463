"""portfolio-grader: grades backend API portfolio projects like a strict reviewer and an attacker."""

__version__ = "0.1.0"
