"""The web app: sign-in and roles, the pages people use every day, and what they share (auth, masking, i18n)."""
