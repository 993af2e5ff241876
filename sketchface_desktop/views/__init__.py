"""The desktop's views: the window, its panels and dialogs (widgets only; they call controllers and ops)."""
