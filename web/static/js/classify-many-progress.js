// Classify-many job page: poll the job's status; show the results page once it is done.
const $ = (id) => document.getElementById(id);
const card = $("many-progress");
const url = `${location.pathname}.json`;

async function poll() {
  let state;
  try {
    const response = await fetch(url, { headers: { Accept: "application/json" } });
    if (!response.ok) throw new Error(String(response.status));
    state = await response.json();
  } catch {
    setTimeout(poll, 2000);
    return;
  }
  $("many-status").textContent = state.status;
  $("many-bar").max = state.total || 1;
  $("many-bar").value = state.done;
  $("many-count").textContent = `${state.done} of ${state.total} images`;
  if (state.status === "Done") {
    location.reload();
  } else if (state.status === "Error") {
    $("many-error").textContent = state.error || "The job failed.";
    $("many-error").hidden = false;
  } else {
    setTimeout(poll, 1000);
  }
}

if (card) setTimeout(poll, 500);
