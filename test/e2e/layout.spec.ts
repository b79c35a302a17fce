/**
 * Small layout checks from a walk through the views at 1024x768 and 1440x900 (the rest of the walk's
 * findings are checked where their views are: Settings in app.spec, the Sessions list's head in sessions.spec).
 */
import { test, expect, openView } from './fixtures';

test('Attack at 1440 px: the model and dataset selects line up, though the dataset has a source line under it', async ({ page, host, consoleErrors }) => {
  await page.setViewportSize({ width: 1440, height: 900 });
  await page.goto(host.url);
  await openView(page, 'attack');
  await expect(page.getByTestId('attack-dataset-source')).toBeVisible();
  const model = (await page.getByTestId('attack-model').boundingBox())!;
  const dataset = (await page.getByTestId('attack-dataset').boundingBox())!;
  expect(Math.abs(model.y - dataset.y), `model select at y ${model.y}, dataset select at y ${dataset.y}`).toBeLessThanOrEqual(1);
  expect(model.x + model.width).toBeLessThan(dataset.x); // on one line, side by side
});
