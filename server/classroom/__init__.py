"""Classroom mode: a teacher's dashboard shows every student's live drawing and prediction
(docs/classroom.md). `routes.ROUTES` are mounted by the app; `/ws` connections join rooms
through `student.Student`."""
