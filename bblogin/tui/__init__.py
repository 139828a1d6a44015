"""The Textual account switcher. Textual is imported here and nowhere else in bblogin."""
