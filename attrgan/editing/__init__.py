"""Attribute edits and vectors, their scores, the studio and its web app."""
