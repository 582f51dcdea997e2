"""Drives the playground in headless Chromium (Debian's chromium, chromium-driver and
python3-selenium, installed by scripts/setup.sh): create a workspace, type a function, save, see the
syntax error at its line, fix it, run it with parameters, see the result and a log line, reload and
find the workspace again. Screenshots of each step go to <build>/test-artifacts/playground/."""
import os
import shutil
import tempfile

import pytest
from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service as DriverService
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


@pytest.fixture(scope="module")
def artifacts(binary):
    path = os.path.join(os.path.dirname(binary), "test-artifacts", "playground")
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    return path


@pytest.fixture
def browser():
    assert os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK), \
        "chromium and chromium-driver are needed: scripts/setup.sh installs them"
    profile = tempfile.mkdtemp(prefix=f"customcode-chromium-{os.getpid()}-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run", "--disable-default-apps", "--window-size=1440,900",
                 f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=DriverService(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def wait(driver, timeout=30):
    return WebDriverWait(driver, timeout)


def editor_text(driver):
    # The text as displayed (the editor shows some typed spaces as no-break spaces); what it
    # holds is checked where it matters, in what the server stores.
    return driver.execute_script(
        "return [...document.querySelectorAll('#editor .cm-line')].map(l => l.textContent).join('\\n')"
    ).replace("\xa0", " ")


def type_code(driver, lines):
    """Replaces the editor's text with `lines`: select all, delete, then each line entered the way
    an input method commits text (one input event per line; key-by-key typing races the editor
    on a loaded machine, and the editor's bracket closing would add to it), with Enter between."""
    content = driver.find_element(By.CSS_SELECTOR, "#editor .cm-content")
    content.click()
    content.send_keys(Keys.CONTROL, "a")
    content.send_keys(Keys.DELETE)
    for i, line in enumerate(lines):
        driver.execute_cdp_cmd("Input.insertText", {"text": line})
        content.send_keys(Keys.ESCAPE)  # close a completion popup, so Enter makes a new line
        if i < len(lines) - 1:
            content.send_keys(Keys.ENTER)
    wanted = "\n".join(lines)
    try:
        wait(driver, 10).until(lambda d: editor_text(d) == wanted)
    except TimeoutException:
        raise AssertionError(f"the editor shows {editor_text(driver)!r}, not {wanted!r}") from None


def text_of(driver, element_id):
    """The text of an element, read in one script: the page re-renders its output, so a found
    element may be replaced before a second command reads it."""
    return driver.execute_script(
        "const e = document.getElementById(arguments[0]); return e ? e.innerText : null", element_id)


def status(driver):
    return text_of(driver, "status")


def test_write_save_fix_run_and_reload_in_a_browser(make_service, browser, artifacts):
    service = make_service()
    assert "playground at /playground/" in service.log(), "the playground bundle is not built"
    driver = browser
    shot = lambda name: driver.save_screenshot(os.path.join(artifacts, name + ".png"))

    # An empty service: no workspace yet.
    driver.get(service.url + "/playground")
    assert driver.current_url == service.url + "/playground/"
    wait(driver).until(EC.text_to_be_present_in_element((By.ID, "workspace-list"), "no workspace yet"))
    shot("01-empty")

    # Create a workspace and type a function with a syntax error on line 2.
    driver.find_element(By.ID, "new-workspace-name").send_keys("demo")
    driver.find_element(By.ID, "create-workspace").click()
    wait(driver).until(lambda d: text_of(d, "workspace-title") == "demo")
    broken = ['console.log("greeting " + name)', 'return "Hi " + name + ;']
    type_code(driver, broken)
    driver.find_element(By.ID, "add-parameter").click()
    param = driver.find_elements(By.CSS_SELECTOR, "#params tr")[-1]
    name_input = param.find_element(By.CSS_SELECTOR, ".param-name")
    name_input.send_keys(Keys.CONTROL, "a")
    name_input.send_keys("times", Keys.TAB)
    Select(driver.find_elements(By.CSS_SELECTOR, "#params tr")[-1].find_element(By.CSS_SELECTOR, ".param-type")) \
        .select_by_value("integer")
    shot("02-typed")

    # Save (Ctrl+S): refused, the error is shown at line 2 and the unsaved code is kept.
    driver.find_element(By.CSS_SELECTOR, "#editor .cm-content").send_keys(Keys.CONTROL, "s")
    wait(driver).until(lambda d: "line 2" in text_of(d, "save-errors"))
    errors = text_of(driver, "save-errors")
    assert "hello: line 2, column" in errors and "SyntaxError" in errors
    # The editor marks line 2, and only it (read in one script: the editor redraws its lines).
    marked = driver.execute_script(
        "return [...document.querySelectorAll('#editor .cm-line')].map(l => l.classList.contains('cc-error-line'))")
    assert marked == [False, True]
    assert driver.find_elements(By.CSS_SELECTOR, "#editor .cm-lintRange-error")
    assert editor_text(driver) == "\n".join(broken)
    assert service.get("/v2/functions/demo").status_code == 404
    shot("03-syntax-error")

    # Fix it and save: the error goes away.
    fixed = ['console.log("greeting " + name)', 'return "Hi " + name + "!".repeat(times);']
    type_code(driver, fixed)
    driver.find_element(By.ID, "save").click()
    wait(driver).until(lambda d: status(d) == "Saved demo")
    assert not driver.find_element(By.ID, "save-errors").is_displayed()
    assert not driver.find_elements(By.CSS_SELECTOR, "#editor .cc-error-line")
    stored = service.get("/v2/functions/demo").json()["functions"]["hello"]
    assert stored["code"] == "\n".join(fixed)
    assert stored["parameters"]["times"] == {"type": "integer"}
    shot("04-saved")

    # Run with parameters from the generated form (Ctrl+Enter): result, log line, timings.
    name_field = driver.find_element(By.CSS_SELECTOR, '#run-form [data-param="name"]')
    name_field.clear()
    name_field.send_keys("Ada")
    times_field = driver.find_element(By.CSS_SELECTOR, '#run-form [data-param="times"]')
    times_field.send_keys("3", Keys.CONTROL, Keys.ENTER)
    wait(driver).until(lambda d: text_of(d, "result") == '"Hi Ada!!!"')
    log_row = driver.find_element(By.CSS_SELECTOR, "#logs tr")
    assert log_row.find_element(By.CSS_SELECTOR, ".level").text == "log"
    assert log_row.find_element(By.CSS_SELECTOR, ".message").text == "greeting Ada"
    assert driver.find_element(By.ID, "duration").text.startswith("duration ")
    timing = driver.find_element(By.ID, "server-timing").text
    assert "run " in timing and "total " in timing and ("queue " in timing or "cold start " in timing)
    shot("05-run")

    # User data is shown as text, never as markup.
    name_field = driver.find_element(By.CSS_SELECTOR, '#run-form [data-param="name"]')
    name_field.clear()
    name_field.send_keys("<img src=x id=injected>")
    driver.find_element(By.ID, "run").click()
    wait(driver).until(lambda d: "<img src=x id=injected>" in (text_of(d, "result") or ""))
    assert "greeting <img src=x id=injected>" in text_of(driver, "logs")
    assert not driver.find_elements(By.ID, "injected")

    # Reload: the workspace is listed and opens again with its code.
    driver.get(service.url + "/playground/")
    link = wait(driver).until(EC.element_to_be_clickable((By.CSS_SELECTOR, '#workspace-list a[data-workspace="demo"]')))
    link.click()
    wait(driver).until(lambda d: text_of(d, "workspace-title") == "demo")
    wait(driver).until(lambda d: editor_text(d) == "\n".join(fixed))
    assert driver.find_element(By.CSS_SELECTOR, '#function-list [data-function="hello"]')
    shot("06-reloaded")
    for name in ("01-empty", "02-typed", "03-syntax-error", "04-saved", "05-run", "06-reloaded"):
        assert os.path.getsize(os.path.join(artifacts, name + ".png")) > 10_000


def test_errors_raw_json_python_and_function_management_in_a_browser(make_service, browser, artifacts):
    service = make_service(env={"FUNCTIONS_RUN_TIMEOUT": "2000"})
    assert "playground at /playground/" in service.log(), "the playground bundle is not built"
    functions = {
        "fails": {"code": 'console.warn("about to fail");\nthrow new TypeError("bad input " + x);',
                  "parameters": {"x": {"type": "number"}}},
        "twice": {"code": "return {'doubled': x * 2}", "language": "python",
                  "parameters": {"x": {"type": "integer", "default": 1}}},
        "slow": {"code": 'console.log("waiting");\nawait new Promise((r) => setTimeout(r, 60000));'},
    }
    assert service.save("tools", functions).status_code == 200
    driver = browser
    driver.get(service.url + "/playground/#ws=tools")
    wait(driver).until(lambda d: text_of(d, "workspace-title") == "tools")
    wait(driver).until(lambda d: "throw new TypeError" in editor_text(d))

    # A function that throws: the envelope, its stack and the log line written before.
    driver.find_element(By.CSS_SELECTOR, '#run-form [data-param="x"]').send_keys("5")
    driver.find_element(By.ID, "run").click()
    wait(driver).until(lambda d: text_of(d, "run-error"))
    assert text_of(driver, "run-error").startswith("FunctionError: TypeError: bad input 5")
    assert "fails" in driver.find_element(By.CSS_SELECTOR, "#run-error .stack").text
    assert "HTTP 500" in driver.find_element(By.ID, "run-summary").text
    log_row = driver.find_element(By.CSS_SELECTOR, "#logs tr")
    assert log_row.find_element(By.CSS_SELECTOR, ".level").text == "warn"
    assert log_row.find_element(By.CSS_SELECTOR, ".message").text == "about to fail"
    driver.save_screenshot(os.path.join(artifacts, "07-function-error.png"))

    # A run that times out: the envelope and the logs written so far.
    driver.find_element(By.CSS_SELECTOR, '#function-list [data-function="slow"]').click()
    wait(driver).until(lambda d: "setTimeout" in editor_text(d))
    driver.find_element(By.ID, "run").click()
    wait(driver).until(lambda d: (text_of(d, "run-error") or "").startswith("TimeoutError"))
    assert "HTTP 504" in text_of(driver, "run-summary")
    assert "waiting" in text_of(driver, "logs")

    # A Python function run with raw JSON parameters.
    driver.find_element(By.CSS_SELECTOR, '#function-list [data-function="twice"]').click()
    wait(driver).until(lambda d: d.find_element(By.ID, "function-language").get_attribute("value") == "python")
    driver.find_element(By.ID, "raw-json").click()
    raw = driver.find_element(By.ID, "raw-parameters")
    assert raw.get_attribute("value").replace(" ", "").replace("\n", "") == '{"x":1}'
    raw.clear()
    raw.send_keys('{"x": 21}')
    driver.find_element(By.ID, "run").click()
    wait(driver).until(lambda d: (text_of(d, "result") or "").replace(" ", "").replace("\n", "") == '{"doubled":42}')
    driver.save_screenshot(os.path.join(artifacts, "08-python-raw-json.png"))

    # Rename one function, delete the other, add a new JavaScript one; save.
    name = driver.find_element(By.ID, "function-name")
    name.send_keys(Keys.CONTROL, "a")
    name.send_keys("double", Keys.TAB)
    wait(driver).until(lambda d: d.find_elements(By.CSS_SELECTOR, '#function-list [data-function="double"]'))
    driver.find_element(By.CSS_SELECTOR, '#function-list [data-function="fails"]').click()
    wait(driver).until(lambda d: d.find_element(By.ID, "function-name").get_attribute("value") == "fails")
    driver.find_element(By.ID, "delete-function").click()
    driver.switch_to.alert.accept()
    driver.find_element(By.ID, "add-function").click()
    wait(driver).until(lambda d: d.find_element(By.ID, "function-name").get_attribute("value") == "newFunction")
    Select(driver.find_element(By.ID, "function-language")).select_by_value("nodejs")
    driver.find_element(By.CSS_SELECTOR, "#editor .cm-content").send_keys(Keys.CONTROL, "s")
    wait(driver).until(lambda d: status(d) == "Saved tools")
    stored = service.get("/v2/functions/tools").json()["functions"]
    assert sorted(stored) == ["double", "newFunction", "slow"]
    assert stored["double"]["language"] == "python" and stored["double"]["code"] == functions["twice"]["code"]
    assert stored["newFunction"] == {"code": "return null;"}

    # Delete the workspace: gone from the list and from the server.
    driver.find_element(By.ID, "delete-workspace").click()
    driver.switch_to.alert.accept()
    wait(driver).until(EC.text_to_be_present_in_element((By.ID, "workspace-list"), "no workspace yet"))
    assert service.get("/v2/functions/tools").status_code == 404
