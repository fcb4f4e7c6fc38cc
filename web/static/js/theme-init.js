// Classic script in <head>: applies a stored theme choice before the first paint (no flash).
(function () {
  try {
    var theme = localStorage.getItem("digits-theme");
    if (theme === "light" || theme === "dark") document.documentElement.dataset.theme = theme;
  } catch (e) { /* storage blocked: follow the OS */ }
})();
